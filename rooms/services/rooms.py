"""Room and member-agent writes (sync: each owns its transaction). Every error is a
``GatewayError`` raised before anything changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from agents.models import Agent
from gateway.protocol.errors import ErrorCode, GatewayError
from rooms import selectors
from rooms.models import ROOM_ID, Room, RoomAgent, Strategy
from rooms.runtime import recent
from rooms.runtime.roster import set_room_count
from rooms.services import limits

_UNSET: Any = object()


def _check_strategy(strategy: str) -> None:
    if strategy not in Strategy.values:
        raise GatewayError(
            ErrorCode.INVALID_REQUEST,
            f"strategy must be one of {', '.join(Strategy.values)}, not {strategy!r}",
        )


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise GatewayError(ErrorCode.INVALID_REQUEST, "room name must be 1-200 characters")
    return name


def _agents(agent_ids: Sequence[str]) -> list[Agent]:
    found = {a.id: a for a in Agent.objects.filter(pk__in=list(agent_ids))}
    missing = [a for a in agent_ids if a not in found]
    if missing:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no agent {missing[0]!r}")
    if len(set(agent_ids)) != len(agent_ids):
        raise GatewayError(ErrorCode.INVALID_REQUEST, "an agent is listed twice")
    return [found[a] for a in agent_ids]


def _limit_members(count: int) -> None:
    limit = limits.max_members()
    if count > limit:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"a room has at most {limit} members",
            details={"limit": limit, "limitName": "maxMembersPerRoom"},
        )


def room_create(
    *,
    name: str,
    description: str = "",
    strategy: str = Strategy.PARALLEL,
    metadata: dict[str, Any] | None = None,
    created_by: str = "",
    room_id: str | None = None,
    agent_ids: Sequence[str] = (),
) -> Room:
    """Create a room (``room_id``: a slug of your choice, else a random hex id) with its
    member agents in that order. ``CONFLICT`` for a taken name or id or at ``maxRooms``;
    ``NOT_FOUND`` for an unknown agent; ``INVALID_REQUEST`` for a bad name/id/strategy."""
    name = _check_name(name)
    _check_strategy(strategy)
    if room_id is not None:
        try:
            ROOM_ID(room_id)
        except ValidationError as exc:
            raise GatewayError(ErrorCode.INVALID_REQUEST, f"room id: {exc.messages[0]}") from None
    agents = _agents(agent_ids)
    _limit_members(len(agents))
    limit = limits.max_rooms()
    try:
        with transaction.atomic():
            if Room.objects.count() >= limit:
                raise GatewayError(
                    ErrorCode.CONFLICT,
                    f"at most {limit} rooms",
                    details={"limit": limit, "limitName": "maxRooms"},
                )
            fields = {"pk": room_id} if room_id else {}
            if room_id and Room.objects.filter(pk=room_id).exists():
                raise GatewayError(ErrorCode.CONFLICT, f"room id {room_id!r} is taken")
            room = Room.objects.create(
                name=name,
                description=description or "",
                strategy=strategy,
                metadata=metadata or {},
                created_by=created_by,
                **fields,
            )
            RoomAgent.objects.bulk_create(
                RoomAgent(room=room, agent=a, position=i) for i, a in enumerate(agents)
            )
    except IntegrityError:
        raise GatewayError(ErrorCode.CONFLICT, f"a room named {name!r} exists") from None
    set_room_count(selectors.room_count())
    return room


def room_update(
    *,
    room_id: str,
    name: str = _UNSET,
    description: str = _UNSET,
    strategy: str = _UNSET,
    metadata: dict[str, Any] = _UNSET,
    agent_ids: Sequence[str] = _UNSET,
) -> Room:
    """Change what is given (``agent_ids`` replaces the member agents, in that order).
    ``NOT_FOUND`` for an unknown room or agent, ``CONFLICT`` for a taken name."""
    room = selectors.room_get(room_id=room_id)
    if name is not _UNSET:
        room.name = _check_name(name)
    if strategy is not _UNSET:
        _check_strategy(strategy)
        room.strategy = strategy
    if description is not _UNSET:
        room.description = description or ""
    if metadata is not _UNSET:
        room.metadata = metadata or {}
    agents = _agents(agent_ids) if agent_ids is not _UNSET else None
    if agents is not None:
        _limit_members(len(agents))
    try:
        with transaction.atomic():
            room.save()
            if agents is not None:
                RoomAgent.objects.filter(room=room).delete()
                RoomAgent.objects.bulk_create(
                    RoomAgent(room=room, agent=a, position=i) for i, a in enumerate(agents)
                )
    except IntegrityError:
        raise GatewayError(ErrorCode.CONFLICT, f"a room named {room.name!r} exists") from None
    recent.forget()
    return room


def room_delete(*, room_id: str) -> None:
    """Delete a room, its member agents and its history (its agents' room sessions stay:
    they are the agents' conversations). ``NOT_FOUND`` if there is no such room."""
    deleted, _ = Room.objects.filter(pk=room_id).delete()
    if not deleted:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no room {room_id!r}")
    recent.forget()
    set_room_count(selectors.room_count())


def room_agent_add(*, room_id: str, agent_id: str) -> RoomAgent:
    """Make an agent a member (last in a sequential room's order). ``NOT_FOUND`` for an
    unknown room or agent, ``CONFLICT`` if it is a member already or the room is full."""
    room = selectors.room_get(room_id=room_id)
    agent = _agents([agent_id])[0]
    with transaction.atomic():
        Room.objects.select_for_update().filter(pk=room.pk).first()
        if RoomAgent.objects.filter(room=room, agent=agent).exists():
            raise GatewayError(ErrorCode.CONFLICT, f"{agent_id!r} is a member already")
        _limit_members(RoomAgent.objects.filter(room=room).count() + 1)
        last = RoomAgent.objects.filter(room=room).aggregate(m=Max("position"))["m"]
        member = RoomAgent.objects.create(
            room=room, agent=agent, position=0 if last is None else last + 1
        )
    recent.forget()
    return member


def room_agent_remove(*, room_id: str, agent_id: str) -> None:
    """Remove a member agent. ``NOT_FOUND`` if the room has no such member."""
    room = selectors.room_get(room_id=room_id)
    deleted, _ = RoomAgent.objects.filter(room=room, agent_id=agent_id).delete()
    recent.forget()
    if not deleted:
        raise GatewayError(ErrorCode.NOT_FOUND, f"{agent_id!r} is not a member of {room_id!r}")
