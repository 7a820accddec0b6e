"""The agents REST API: agents, bindings, sessions (and their messages) and runs.

Plain CRUD is ViewSets on the router (agents/api/urls.py); every write goes through a
service (agents/services/), reads through selectors. Services raise Django's
``ValidationError`` keyed by model field or ``GatewayError``; gateway/api/exceptions.py
turns them into 400/404/409 answers.

Runs execute on the ASGI server's event loop, next to WebSocket runs: these views are
synchronous (Django runs them in a worker thread) and call the async run service through
``async_to_sync``, which, under ASGI, runs the coroutine on the server's loop.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from agents import selectors
from agents.api import serializers as s
from agents.api.streams import run_events
from agents.methods import run_request
from agents.models import Agent, Binding, RunSource, Session
from agents.services import agents as agent_service
from agents.services import runs
from agents.services import sessions as session_service
from agents.services.runs import RunRequest, RunTicket
from gateway.api.schema import ErrorSerializer
from gateway.api.sse import MEDIA_TYPE as SSE_MEDIA_TYPE
from gateway.api.sse import EventStreamRenderer
from gateway.protocol.agent import RunParams
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.ws.writer import SOCKET_SCOPE_KEY

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _filters(serializer_class: type[serializers.Serializer], request) -> dict[str, Any]:
    """Validated query filters (a 400 names the bad one)."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


# agents ----------------------------------------------------------------------------------
@extend_schema(tags=["agents"])
class AgentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agents with their bindings."""

    queryset = Agent.objects.prefetch_related("bindings")
    serializer_class = s.AgentOutput
    lookup_value_regex = "[^/]+"
    api_field_names = s.API_FIELD_NAMES

    @extend_schema(request=s.AgentCreateInput, responses={201: s.AgentOutput})
    def create(self, request):
        """Create an agent (the first one becomes the default)."""
        data = s.AgentCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = agent_service.agent_create(**data.service_kwargs())
        return Response(self._output(agent), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.AgentUpdateInput, responses={200: s.AgentOutput})
    def update(self, request, pk=None):
        """Replace an agent's settings (fields left out get their defaults)."""
        return self._update(request, partial=False)

    @extend_schema(request=s.AgentUpdateInput, responses={200: s.AgentOutput})
    def partial_update(self, request, pk=None):
        """Change some of an agent's settings."""
        return self._update(request, partial=True)

    @extend_schema(
        parameters=[s.AgentDeleteQuery],
        responses={
            204: None,
            409: OpenApiResponse(
                s.AgentDeleteRefused,
                description="the default agent, or an agent with sessions and no force",
            ),
        },
    )
    def destroy(self, request, pk=None):
        """Delete an agent with its bindings; never the only or the default agent, and one
        with sessions only with ``?force=true`` (which deletes them with their history)."""
        agent = self.get_object()
        force = _filters(s.AgentDeleteQuery, request)["force"]
        try:
            agent_service.agent_delete(agent=agent, force=force)
        except agent_service.AgentHasSessions as refused:
            detail = f"{refused.message}; to delete them too: DELETE {request.path}?force=true"
            body = {"detail": detail, "code": str(refused.code), "sessions": refused.sessions}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, *, partial: bool) -> Response:
        agent = self.get_object()
        data = s.AgentUpdateInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        agent_service.agent_update(agent=agent, **data.service_kwargs())
        return Response(self._output(agent))

    def _output(self, agent: Agent) -> dict[str, Any]:
        return s.AgentOutput(self.get_queryset().get(pk=agent.pk)).data


# bindings --------------------------------------------------------------------------------
@extend_schema(tags=["agents"])
class BindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Routing bindings: which agent answers which channel identity."""

    serializer_class = s.BindingOutput
    api_field_names = s.API_FIELD_NAMES

    def get_queryset(self):
        qs = Binding.objects.order_by("order", "id")
        if self.action != "list":
            return qs
        filters = _filters(s.BindingFilter, self.request)
        if filters.get("agent"):
            qs = qs.filter(agent_id=filters["agent"])
        if filters.get("channel"):
            qs = qs.filter(channel=filters["channel"])
        return qs

    @extend_schema(parameters=[s.BindingFilter])
    def list(self, request, *args, **kwargs):
        """Bindings, most preferred (lowest ``order``) first."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.BindingInput, responses={201: s.BindingOutput})
    def create(self, request):
        """Add a binding to an agent."""
        data = s.BindingInput(data=request.data)
        data.is_valid(raise_exception=True)
        binding = agent_service.binding_create(**data.validated_data)
        return Response(s.BindingOutput(binding).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.BindingInput, responses={200: s.BindingOutput})
    def update(self, request, pk=None):
        """Replace a binding (fields left out get their defaults)."""
        return self._update(request, partial=False)

    @extend_schema(request=s.BindingInput, responses={200: s.BindingOutput})
    def partial_update(self, request, pk=None):
        """Change some fields of a binding."""
        return self._update(request, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        agent_service.binding_delete(binding=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, *, partial: bool) -> Response:
        binding = self.get_object()
        data = s.BindingInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        binding = agent_service.binding_update(binding=binding, **data.validated_data)
        return Response(s.BindingOutput(binding).data)


# sessions --------------------------------------------------------------------------------
@extend_schema(tags=["sessions"])
class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Durable conversations, addressed by their session key (``agent:<id>:...``)."""

    serializer_class = s.SessionOutput
    lookup_field = "key"
    # Keys contain ':' (agent:main:discord:channel:123); a key with '/' (a peer id with a
    # slash) cannot be addressed in a path: ASGI servers decode %2F before routing.
    lookup_value_regex = "[^/]+"
    api_field_names = s.API_FIELD_NAMES

    def get_queryset(self):
        if self.action != "list":
            return Session.objects.all()
        filters = _filters(s.SessionFilter, self.request)
        return selectors.session_queryset(
            agent_id=filters.get("agent"),
            channel=filters.get("channel"),
            search=filters.get("search"),
        )

    @extend_schema(parameters=[s.SessionFilter])
    def list(self, request, *args, **kwargs):
        """Sessions, most recently active first."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.SessionCreateInput, responses={201: s.SessionOutput})
    def create(self, request):
        """A new, separate conversation with an agent (the default agent if none given)."""
        data = s.SessionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = data.validated_data.get("agentId") or session_service.agent_default()
        session = session_service.session_create(agent=agent, name=data.validated_data["name"])
        return Response(s.SessionOutput(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SessionUpdateInput, responses={200: s.SessionOutput})
    def partial_update(self, request, key=None):
        """Rename the session and/or set its working folder (inside ``gateway.fsRoots``)."""
        session = self.get_object()
        data = s.SessionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            session = session_service.session_update(
                key=session.key,
                name=data.validated_data.get("name"),
                folder=data.validated_data.get("workingFolder"),
            )
        except GatewayError as exc:  # only the folder can be refused
            if exc.code == ErrorCode.NOT_FOUND:
                raise
            raise serializers.ValidationError({"workingFolder": [exc.message]}) from exc
        return Response(s.SessionOutput(session).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, key=None):
        """Delete the session with its messages and runs."""
        session_service.session_delete(key=self.get_object().key)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: s.MessageOutput(many=True)})
    @action(detail=True, methods=["get"], serializer_class=s.MessageOutput)
    def messages(self, request, key=None):
        """The session's messages, oldest first."""
        session = self.get_object()
        page = self.paginate_queryset(selectors.message_queryset(session=session))
        return self.get_paginated_response(s.MessageOutput(page, many=True).data)


# runs ------------------------------------------------------------------------------------
_RUN_CREATED = OpenApiResponse(s.RunCreateOutput, description="accepted (or the same run again)")


@extend_schema(tags=["runs"])
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agent runs: start one, follow its events, cancel it, read its result."""

    serializer_class = s.RunOutput
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if self.action != "list":
            return selectors.run_queryset()
        filters = _filters(s.RunFilter, self.request)
        return selectors.run_queryset(
            status=filters.get("status"),
            session_key=filters.get("session"),
            agent_id=filters.get("agent"),
        )

    @extend_schema(parameters=[s.RunFilter])
    def list(self, request, *args, **kwargs):
        """Runs, newest first."""
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=s.RunCreateInput,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="a retry with the same key returns the same run (max 200 chars)",
            )
        ],
        responses={
            202: _RUN_CREATED,
            404: OpenApiResponse(ErrorSerializer, description="no agent is configured"),
            409: OpenApiResponse(
                ErrorSerializer, description="the session is busy and queue was false"
            ),
        },
    )
    def create(self, request):
        """Start a run: 202 at once; follow it at ``/api/runs/<id>/events``."""
        data = s.RunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        params: RunParams = data.validated_data
        key = _idempotency_key(request, params.idempotency_key)
        req = run_request(params, source=RunSource.API, idempotency_key=key)
        ticket = async_to_sync(_start)(req)
        body = s.RunCreateOutput(ticket).data
        location = request.build_absolute_uri(reverse("run-detail", args=[ticket.run_id]))
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(request=None, responses={200: s.RunCancelOutput})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running run; it ends with ``agent-cancelled``."""
        run = self.get_object()
        cancelled = async_to_sync(runs.run_cancel)(run.id)
        return Response(s.RunCancelOutput({"runId": run.id, "cancelled": cancelled}).data)

    @extend_schema(
        responses={
            (200, SSE_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR,
                description=(
                    "Server-Sent Events: `event: agent-start|agent-stream|tool-start|tool-end|"
                    "agent-complete|agent-error|agent-cancelled`, `data: <agent event JSON>`; "
                    "a live run is replayed from its start first (`replay: true`); ends after "
                    "the one terminal event (at once for a finished run), or with `event: "
                    "error` (code SLOW_CONSUMER) for a follower too far behind"
                ),
            )
        }
    )
    @action(detail=True, methods=["get"], renderer_classes=[EventStreamRenderer, JSONRenderer])
    def events(self, request, pk=None):
        """Stream the run's events as Server-Sent Events."""
        run = self.get_object()
        socket = (getattr(request, "scope", None) or {}).get(SOCKET_SCOPE_KEY)
        response = StreamingHttpResponse(run_events(run, socket), content_type=SSE_MEDIA_TYPE)
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response


def _idempotency_key(request, field: str | None) -> str | None:
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is not None and len(header) > 200:
        raise serializers.ValidationError({IDEMPOTENCY_HEADER: ["at most 200 characters"]})
    if header and field and header != field:
        raise serializers.ValidationError(
            {"idempotencyKey": [f"differs from the {IDEMPOTENCY_HEADER} header"]}
        )
    return header or field or None


async def _start(req: RunRequest) -> RunTicket:
    """Accept the run; its executor runs it (the request only accepts it)."""
    return await runs.run_start(request=req)
