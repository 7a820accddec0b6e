"""Reads: rooms, their members (agents, and live nodes/clients across every gateway
process) and their history, as plain data for the protocol, the API and the UI."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.db.models import Count, Q, QuerySet

from gateway.delivery.hub import get_hub
from gateway.protocol.errors import ErrorCode, GatewayError
from rooms.models import Room, RoomAgent, RoomMessage
from rooms.runtime.roster import Roster, roster_for


def _ms(dt) -> int | None:
    return int(dt.timestamp() * 1000) if dt else None


def rooms_with_counts() -> QuerySet[Room]:
    """Rooms annotated with ``agent_count`` and ``message_count`` (lists, admin)."""
    return Room.objects.annotate(
        agent_count=Count("agents", distinct=True),
        message_count=Count("messages", distinct=True),
    )


def room_get(*, room_id: str) -> Room:
    """The room with this id, else the one with this name; ``NOT_FOUND`` otherwise."""
    room = Room.objects.filter(pk=room_id).first() or Room.objects.filter(name=room_id).first()
    if room is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no room {room_id!r}")
    return room


def room_find(*, room_id: str | None = None, name: str | None = None) -> Room | None:
    """The room with this id or this exact name, or None."""
    if room_id:
        return Room.objects.filter(pk=room_id).first()
    if name:
        return Room.objects.filter(name=name).first()
    return None


def room_agent_ids(*, room_id: str) -> list[str]:
    """The member agents' ids, in their order (a sequential room's turns)."""
    return list(
        RoomAgent.objects.filter(room_id=room_id)
        .order_by("position", "id")
        .values_list("agent_id", flat=True)
    )


def rooms_with_agent_ids(*, keys: list[str]) -> dict[str, tuple[Room, list[str]]]:
    """For each key (a room id, else a name) that names a room: (room, its agent ids in
    order). Two queries whatever the number of keys."""
    rooms = list(Room.objects.filter(Q(pk__in=keys) | Q(name__in=keys)))
    agents: dict[str, list[str]] = {r.pk: [] for r in rooms}
    for room_id, agent_id in (
        RoomAgent.objects.filter(room_id__in=list(agents))
        .order_by("position", "id")
        .values_list("room_id", "agent_id")
    ):
        agents[room_id].append(agent_id)
    by_id = {r.pk: r for r in rooms}
    by_name = {r.name: r for r in rooms}
    out = {}
    for key in keys:
        room = by_id.get(key) or by_name.get(key)
        if room is not None:
            out[key] = (room, agents[room.pk])
    return out


def room_data(room: Room, *, agent_ids: list[str] | None = None) -> dict[str, Any]:
    """``{id, name, description, strategy, metadata, createdBy, createdAt, updatedAt,
    agents:[agentId...]}``."""
    return {
        "id": room.id,
        "name": room.name,
        "description": room.description,
        "strategy": room.strategy,
        "metadata": room.metadata or {},
        "createdBy": room.created_by,
        "createdAt": _ms(room.created_at),
        "updatedAt": _ms(room.updated_at),
        "agents": agent_ids if agent_ids is not None else room_agent_ids(room_id=room.id),
    }


def room_list(*, limit: int = 1000) -> list[dict[str, Any]]:
    """The first ``limit`` rooms as :func:`room_data`, oldest first (two queries)."""
    rooms = list(Room.objects.all()[: max(1, limit)])
    agents: dict[str, list[str]] = {}
    for room_id, agent_id in RoomAgent.objects.order_by("position", "id").values_list(
        "room_id", "agent_id"
    ):
        agents.setdefault(room_id, []).append(agent_id)
    return [room_data(r, agent_ids=agents.get(r.id, [])) for r in rooms]


def room_detail(*, room_id: str) -> dict[str, Any]:
    """One room (by id or name) as :func:`room_data`; ``NOT_FOUND`` otherwise."""
    return room_data(room_get(room_id=room_id))


def room_count() -> int:
    return Room.objects.count()


def stored_counts() -> dict[str, Any]:
    """How much is stored: rooms and history entries (the Control UI's Status page)."""
    return {"rooms": Room.objects.count(), "roomMessages": RoomMessage.objects.count()}


async def room_members(*, room_id: str, roster: Roster | None = None) -> dict[str, Any]:
    """``{roomId, agents:[{agentId, position}], live:[{connId, kind: node|client, id, name,
    joinedAt}]}``: the persisted agents and the connections that are members now, on every
    gateway process (``roster``: this process's; default: the running hub's). ``room_id``
    is a room id (or name); ``NOT_FOUND`` for no such room."""
    room = await database_sync_to_async(room_get)(room_id=room_id)
    room_id = room.id
    if roster is None:
        roster = roster_for((await get_hub()).id)
    agents = [
        {"agentId": a, "position": p}
        async for a, p in RoomAgent.objects.filter(room_id=room_id)
        .order_by("position", "id")
        .values_list("agent_id", "position")
    ]
    return {"roomId": room_id, "agents": agents, "live": await roster.room_members(room_id)}


def message_data(m: Any) -> dict[str, Any]:
    """One history entry (a ``RoomMessage``, or a ``services.history.Entry`` not written
    yet): ``{id?, roomId, broadcastId, from:{kind, id, name}, content, payload?, runId?,
    agentId?, status?, timestamp}``."""
    out: dict[str, Any] = {
        "roomId": m.room_id,
        "broadcastId": m.broadcast_id,
        "from": {"kind": m.sender_kind, "id": m.sender_id, "name": m.sender_name or m.sender_id},
        "content": m.content,
        "timestamp": _ms(m.created_at),
    }
    if m.pk is not None:
        out["id"] = m.pk
    if m.payload is not None:
        out["payload"] = m.payload
    if m.run_id:
        out["runId"] = m.run_id
        out["agentId"] = m.sender_id
        out["status"] = m.status
    return out


def room_history(
    *, room_id: str, limit: int = 200, before: int | None = None
) -> list[dict[str, Any]]:
    """The room's last ``limit`` entries (before entry id ``before``), oldest first: each
    broadcast and each agent's answer with its run id."""
    qs = RoomMessage.objects.filter(room_id=room_id)
    if before is not None:
        qs = qs.filter(pk__lt=before)
    entries = list(qs.order_by("-pk")[: max(1, limit)])
    entries.reverse()
    return [message_data(m) for m in entries]
