"""The routines REST API: ``/api/routines`` (seed 001's GET/POST and DELETE, plus one
routine's GET/PUT/PATCH, run now and its run history).

Writes go through ``routines.services``; a ValidationError keyed by model field answers 400
keyed by the API's field names (``api_field_names``), and nothing is saved.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from gateway.api.schema import ErrorSerializer
from routines import wire
from routines.api import serializers as s
from routines.models import Routine
from routines.services import routines as service

#: What a PUT resets the fields it leaves out to.
PUT_DEFAULTS = {
    "description": "",
    "timezone": None,
    "enabled": True,
    "target_kind": "routine",
    "target_session_key": "",
    "delete_after_run": False,
}


@extend_schema(tags=["routines"])
class RoutineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Routines: an agent prompt on a CRON, interval or one-time schedule."""

    serializer_class = s.RoutineOutput
    lookup_value_regex = "[^/]+"
    api_field_names = wire.WIRE_NAMES

    def get_queryset(self):
        if self.action != "list":
            return Routine.objects.all()
        query = s.RoutineFilter(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        return wire.routine_queryset(agent_id=filters.get("agent"), enabled=filters["enabled"])

    @extend_schema(parameters=[s.RoutineFilter])
    def list(self, request, *args, **kwargs):
        """Routines, by name."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.RoutineInput, responses={201: s.RoutineOutput})
    def create(self, request):
        """Create a routine; its schedule starts at once (unless ``enabled`` is false)."""
        data = s.RoutineInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "id" in fields:
            fields["routine_id"] = fields.pop("id")
        routine = service.routine_create(**{k: v for k, v in fields.items() if v is not None})
        return Response(wire.routine_view(routine), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RoutineInput, responses={200: s.RoutineOutput})
    def update(self, request, pk=None):
        """Replace a routine's settings (fields left out get their defaults)."""
        routine = self.get_object()
        data = s.RoutineInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = PUT_DEFAULTS | dict(data.validated_data)
        if changes.pop("id", routine.pk) != routine.pk:
            return Response({"id": ["cannot be changed"]}, status=status.HTTP_400_BAD_REQUEST)
        routine = service.routine_update(routine_id=routine.pk, **changes)
        return Response(wire.routine_view(routine))

    @extend_schema(request=s.RoutinePatchInput, responses={200: s.RoutineOutput})
    def partial_update(self, request, pk=None):
        """Change some of a routine's settings."""
        routine = self.get_object()
        data = s.RoutinePatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        routine = service.routine_update(routine_id=routine.pk, **data.validated_data)
        return Response(wire.routine_view(routine))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """Delete a routine (its thread and past runs stay)."""
        service.routine_delete(routine_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            202: s.RoutineRunNowOutput,
            409: OpenApiResponse(
                s.RoutineRunNowOutput, description="skipped: its previous run is still going"
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        """Run the routine now (in its target session), whatever its schedule says."""
        outcome = async_to_sync(wire.run_now)(self.get_object().pk)
        code = status.HTTP_202_ACCEPTED if outcome["runId"] else status.HTTP_409_CONFLICT
        return Response(outcome, status=code)

    @extend_schema(
        responses={200: s.RoutineRunOutput(many=True), 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], serializer_class=s.RoutineRunOutput)
    def runs(self, request, pk=None):
        """The routine's runs and skipped times, newest first (paginated)."""
        routine = self.get_object()
        page = self.paginate_queryset(wire.run_queryset(routine.pk))
        return self.get_paginated_response(s.RoutineRunOutput(page, many=True).data)
