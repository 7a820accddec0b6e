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
AgentIds = Field(max_length=100, description="ids of the member agents")


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


class RoomsListParams(Frame):
    """``rooms.list``: rooms by name."""

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
    agents: list[str] = AgentIds

    _name = field_validator("name")(_not_blank)


class RoomsUpdateParams(Frame):
    """``rooms.update``: change some fields; ``agents`` (when given) is the new member list."""

    room_id: str = RoomId
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    strategy: Strategy | None = None
    metadata: dict[str, Any] | None = None
    agents: list[str] | None = AgentIds

    _name = field_validator("name")(_not_blank)


class RoomsBroadcastParams(Frame):
    """``rooms.broadcast``: every member agent runs once on ``message`` (the room's strategy
    unless ``strategy`` overrides it); live members except the sender receive it."""

    room_id: str = RoomId
    message: str = Field(min_length=1, max_length=200_000)
    strategy: Strategy | None = None

    _message = field_validator("message")(_not_blank)


class RoomsHistoryParams(Frame):
    """``rooms.history``: the room's messages and answers, oldest first (the last ``limit``)."""

    room_id: str = RoomId
    limit: int = Field(default=200, ge=1, le=1000)


class RoomsBroadcastResult(Frame):
    """What ``rooms.broadcast`` answers: the room, its strategy and one run per member agent
    (``runs`` in member order; ``runIds`` the same ids)."""

    room_id: str = Field(alias="roomId")
    strategy: Strategy
    run_ids: list[str] = Field(alias="runIds")
    runs: list[dict[str, Any]]
