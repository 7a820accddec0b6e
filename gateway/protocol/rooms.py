"""Params of the ``rooms.*`` methods (design/protocol.md, "Methods"; seed 001 "Rooms").

A room is a broadcast group: persisted member agents, and live member connections (nodes
and clients, gone when they disconnect). ``rooms.join``/``rooms.leave`` make the calling
connection a live member; ``rooms.broadcast`` runs every member agent once on the message
and answers with the run ids.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from gateway.protocol.base import Frame

Strategy = Literal["parallel", "sequential"]
STRATEGIES: tuple[str, ...] = ("parallel", "sequential")

RoomId = Field(alias="roomId", min_length=1, max_length=200)


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


class RoomsListParams(Frame):
    """``rooms.list``: rooms, oldest first."""

    limit: int = Field(default=200, ge=1, le=1000)


class RoomIdParams(Frame):
    """A method about one room: ``rooms.get|delete|join|leave|members``."""

    room_id: str = RoomId


class RoomsCreateParams(Frame):
    """``rooms.create``: a new room with its member agents."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    strategy: Strategy = "parallel"
    metadata: dict[str, Any] = Field(default_factory=dict)
    agents: list[str] = Field(
        default_factory=list, max_length=100, description="member agent ids, in turn order"
    )

    _name = field_validator("name")(_not_blank)


class RoomChanges(Frame):
    """The fields a room update may change (``PATCH /api/rooms/<id>`` takes exactly these);
    ``agents`` (when given) is the new member list, in turn order. A field left out stays
    as it is; ``null`` is refused (the defaults are never validated, a given value is)."""

    name: str = Field(default=None, min_length=1, max_length=200)
    description: str = Field(default=None, max_length=2000)
    strategy: Strategy = None  # type: ignore[assignment]
    metadata: dict[str, Any] = None  # type: ignore[assignment]
    agents: list[str] = Field(
        default=None, max_length=100, description="the new member agents, in turn order"
    )

    _name = field_validator("name")(_not_blank)


class RoomsUpdateParams(RoomChanges):
    """``rooms.update``: change some fields of a room."""

    room_id: str = RoomId


class BroadcastMessage(Frame):
    """What a broadcast carries (``POST /api/rooms/<id>/broadcast`` takes exactly this):
    every member agent runs once on ``message`` (the room's strategy unless ``strategy``
    overrides it); live members except the sender receive it."""

    message: str = Field(min_length=1, max_length=200_000)
    strategy: Strategy | None = None

    _message = field_validator("message")(_not_blank)


class RoomsBroadcastParams(BroadcastMessage):
    """``rooms.broadcast``: broadcast ``message`` to the room; answers with the run ids."""

    room_id: str = RoomId


class RoomAgentInput(Frame):
    """An agent to add to a room (``POST /api/rooms/<id>/members``)."""

    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)


class RoomsHistoryParams(Frame):
    """``rooms.history``: the room's messages and answers, oldest first: the last ``limit``
    (at most ``WINGMAN_ROOM_HISTORY_LIMIT``), before entry ``before`` when given (paging)."""

    room_id: str = RoomId
    limit: int = Field(default=200, ge=1, le=1000)
    before: int | None = Field(default=None, ge=1, description="an entry id: older ones only")


class BroadcastRun(Frame):
    agent_id: str = Field(alias="agentId")
    run_id: str = Field(alias="runId")
    session_key: str = Field(alias="sessionKey")


class RoomsBroadcastResult(Frame):
    """What ``rooms.broadcast`` answers: the runs started now, in member order (all of them
    in a parallel room; the first in a sequential one, whose later agents are ``pending``
    and start as their turn comes) and their ids."""

    room_id: str = Field(alias="roomId")
    broadcast_id: str = Field(alias="broadcastId")
    strategy: Strategy
    run_ids: list[str] = Field(alias="runIds")
    runs: list[BroadcastRun]
    pending: list[str]
