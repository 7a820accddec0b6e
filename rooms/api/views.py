"""The rooms REST API: rooms (CRUD), their member agents, broadcasts and history.

Writes go through ``rooms/services/``, reads through ``rooms/selectors.py``; inputs are the
WebSocket methods' own models (``gateway/protocol/rooms.py``), so a bad body is a 400 keyed
by field before anything is written, and the answers have the ``rooms.*`` methods' shapes.
Service errors (``GatewayError``) become 404/409 through gateway/api/exceptions.py.
Broadcasts start runs on the ASGI server's loop (``async_to_sync``), like ``POST /api/runs``.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.schema import ErrorSerializer
from rooms import selectors
from rooms.api import serializers as s
from rooms.models import Room
from rooms.services import broadcast as broadcast_service
from rooms.services import history, limits, live
from rooms.services import rooms as room_service
from rooms.services.broadcast import Sender

_CONFLICT = OpenApiResponse(
    ErrorSerializer, description="a limit is reached (maxRooms / maxMembersPerRoom)"
)


@extend_schema(tags=["rooms"])
class RoomViewSet(viewsets.GenericViewSet):
    """Broadcast rooms: agents that all answer a message, and live members (nodes, clients)."""

    lookup_value_regex = "[^/]+"
    serializer_class = s.RoomOutput

    def _room(self, pk: str) -> Room:
        return selectors.room_get(room_id=pk)

    def list(self, request: Request) -> Response:
        """Rooms with their member agents, oldest first (``?limit=&offset=``)."""
        page = self.paginate_queryset(selectors.room_list())
        return self.get_paginated_response(page)

    @extend_schema(request=s.RoomCreateInput, responses={201: s.RoomOutput, 409: _CONFLICT})
    def create(self, request: Request) -> Response:
        """Create a room with its member agents (in turn order)."""
        params = _valid(s.RoomCreateInput, request.data)
        room = room_service.room_create(
            name=params.name,
            description=params.description,
            strategy=params.strategy,
            metadata=params.metadata,
            agent_ids=params.agents,
            created_by=_creator(request),
        )
        return Response(selectors.room_data(room), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.RoomOutput})
    def retrieve(self, request: Request, pk: str) -> Response:
        """One room (by id, or by name)."""
        return Response(selectors.room_data(self._room(pk)))

    @extend_schema(request=s.RoomUpdateInput, responses={200: s.RoomOutput, 409: _CONFLICT})
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change some fields; ``agents`` replaces the member agents."""
        room = self._room(pk)
        params = _valid(s.RoomUpdateInput, request.data, room=room)
        changes = params.model_dump(exclude_unset=True)
        if "agents" in changes:
            changes["agent_ids"] = changes.pop("agents")
        room = room_service.room_update(room_id=room.id, **changes)
        return Response(selectors.room_data(room))

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the room with its history (its agents' room sessions stay)."""
        room_service.room_delete(room_id=self._room(pk).id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["get"], responses={200: s.MembersOutput})
    @extend_schema(
        methods=["post"],
        request=s.RoomAgentInput,
        responses={201: s.MembersOutput, 409: _CONFLICT},
        description="Add a member agent (last in turn order); 409 if it is one already.",
    )
    @action(detail=True, methods=["get", "post"])
    def members(self, request: Request, pk: str) -> Response:
        """Member agents (persisted) and live members (connections, nodes) on every process."""
        room = self._room(pk)
        if request.method == "POST":
            params = _valid(s.RoomAgentInput, request.data)
            room_service.room_agent_add(room_id=room.id, agent_id=params.agent_id)
            return Response(_members(room.id), status=status.HTTP_201_CREATED)
        return Response(_members(room.id))

    @extend_schema(responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<agent_id>[^/]+)")
    def member_remove(self, request: Request, pk: str, agent_id: str) -> Response:
        """Remove a member agent (404 if it is not one)."""
        room_service.room_agent_remove(room_id=self._room(pk).id, agent_id=agent_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=s.BroadcastInput,
        responses={
            202: OpenApiResponse(s.BroadcastOutput, description="accepted: one run per agent"),
        },
    )
    @action(detail=True, methods=["post"])
    def broadcast(self, request: Request, pk: str) -> Response:
        """Every member agent runs once on the message (each in its room session), and live
        members receive it: 202 with the run ids; follow them at ``/api/runs/<id>/events``."""
        room = self._room(pk)
        params = _valid(s.BroadcastInput, request.data)
        answer = async_to_sync(_broadcast)(
            room_id=room.id,
            message=params.message,
            strategy=params.strategy,
            sender=_sender(request),
        )
        return Response(answer, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[s.HistoryQuery],
        responses={
            200: s.HistoryOutput,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="a bad limit or before"),
        },
    )
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """The room's broadcasts and agents' answers, oldest first (the last ``limit``)."""
        room = self._room(pk)
        query = s.HistoryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = min(query.validated_data["limit"], limits.history_limit())
        before = query.validated_data.get("before")
        messages = selectors.room_history(room_id=room.id, limit=limit, before=before)
        return Response({"roomId": room.id, "messages": messages})


async def _broadcast(**kwargs) -> dict[str, Any]:
    """A broadcast whose message is in the history when the 202 goes out (read your writes;
    the agents' answers are written as their runs end)."""
    answer = await broadcast_service.room_broadcast(**kwargs)
    await history.history_flush()
    return answer


def _valid(serializer_class, data, **context) -> Any:
    body = serializer_class(data=data, context=context)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _creator(request: Request) -> str:
    user = getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else ""
    return f"user:{name}" if name else "api"


def _sender(request: Request) -> Sender:
    creator = _creator(request)
    return Sender(kind="user", id=creator, name=creator)


def _members(room_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        _hub, roster = await live.this_roster()
        return await selectors.room_members(room_id=room_id, roster=roster)

    return async_to_sync(read)()
