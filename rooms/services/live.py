"""Live room membership: connections (nodes and clients) joining and leaving rooms, on this
gateway process, visible to every process (``rooms/runtime/roster.py``).

A live member is one connection: it gets the room's events (``room.message`` from the
others, ``room.member``, the room's agent runs) through the room's topic, and stops being a
member when it leaves or its connection closes. Membership is not stored in the database.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from agents.services.runs import room_topic
from gateway.delivery import publish
from gateway.delivery.hub import Hub, get_hub, running_hub
from gateway.protocol import events
from gateway.protocol.dialects.base import ClientIdentity, now_ms
from gateway.protocol.errors import ErrorCode, GatewayError
from rooms import selectors
from rooms.models import Room, RoomAgent
from rooms.runtime.roster import Roster, roster_for, set_room_count
from rooms.services import limits


async def this_roster() -> tuple[Hub, Roster]:
    """This gateway process's hub and roster."""
    hub = running_hub() or await get_hub()
    return hub, roster_for(hub.id)


def _room_and_agent_count(room_id: str) -> tuple[Room, int]:
    room = selectors.room_get(room_id=room_id)
    return room, RoomAgent.objects.filter(room=room).count()


async def _topic(hub: Hub, conn_id: str, topic: str, *, join: bool) -> None:
    conn = hub.connections.get(conn_id)
    if conn is None:
        return
    if join:
        await hub.join_topic(conn, topic)
    else:
        await hub.leave_topic(conn, topic)


async def publish_member(room_id: str, action: str, member: dict[str, Any], reason: str) -> None:
    """``room.member`` to the room (not to the member it is about)."""
    payload = {
        "roomId": room_id,
        "action": action,
        "member": member,
        "reason": reason,
        "timestamp": now_ms(),
    }
    await publish.publish_topic(
        room_topic(room_id), events.ROOM_MEMBER, payload, exclude=member["connId"]
    )


async def room_join(
    *,
    room_id: str,
    conn_id: str,
    kind: str = "client",
    member_id: str | None = None,
    name: str = "",
    client: ClientIdentity | None = None,
) -> tuple[Room, bool]:
    """Make the connection ``conn_id`` (of this process) a live member of a room (by id or
    name): it joins the room's topic (the room's events from now on), and ``room.member
    join`` goes to the others. ``kind`` is ``node`` or ``client``; ``member_id`` the node
    id (default: the connection id); ``name`` (default: ``client``'s display name or id).
    Returns (room, joined now: False if it was a member already). ``NOT_FOUND`` for no such
    room; ``CONFLICT`` when the room has ``maxMembersPerRoom`` members."""
    if not name and client is not None:
        name = client.display_name or client.instance_id or client.client_id
    room, agent_count = await database_sync_to_async(_room_and_agent_count)(room_id)
    hub, roster = await this_roster()
    if roster.is_member(room.id, conn_id):
        return room, False
    limit = limits.max_members()
    if agent_count + len(await roster.room_members(room.id)) + 1 > limit:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"room {room.name!r} is full ({limit} members)",
            details={"limit": limit, "limitName": "maxMembersPerRoom"},
        )
    member = {
        "connId": conn_id,
        "kind": kind,
        "id": member_id or conn_id,
        "name": name or member_id or conn_id,
        "joinedAt": now_ms(),
    }
    roster.add_member(room.id, member)
    await _topic(hub, conn_id, room_topic(room.id), join=True)
    await roster.flush()
    await publish_member(room.id, "join", member, "joined")
    return room, True


async def room_leave(*, room_id: str, conn_id: str, reason: str = "left") -> bool:
    """The connection stops being a live member of a room (by id or name); False if it was
    not one. ``room.member leave`` goes to the others. ``NOT_FOUND`` for no such room."""
    room = await database_sync_to_async(selectors.room_get)(room_id=room_id)
    hub, roster = await this_roster()
    member = roster.remove_member(room.id, conn_id)
    if member is None:
        return False
    await _topic(hub, conn_id, room_topic(room.id), join=False)
    await roster.flush()
    await publish_member(room.id, "leave", member, reason)
    return True


async def leave_all(roster: Roster, conn_id: str, reason: str) -> list[str]:
    """Every room the connection is a live member of, left (its topics are the hub's to
    drop); returns their ids."""
    left = []
    for room_id in sorted(roster.rooms_of_conn.get(conn_id, ())):
        member = roster.remove_member(room_id, conn_id)
        if member is not None:
            left.append(room_id)
            await publish_member(room_id, "leave", member, reason)
    return left


async def room_members(*, room_id: str) -> dict[str, Any]:
    """``selectors.room_members`` for a room given by id or name (``NOT_FOUND`` otherwise)."""
    room = await database_sync_to_async(selectors.room_get)(room_id=room_id)
    _, roster = await this_roster()
    return await selectors.room_members(room_id=room.id, roster=roster)


def _rooms_brief() -> list[dict[str, Any]]:
    return selectors.room_list()


async def groups_report() -> dict[str, Any]:
    """``/stats``'s ``groups`` (seed 000): every room with its member count (agents and live
    members on every process) and its live members."""
    rooms = await database_sync_to_async(_rooms_brief)()
    _, roster = await this_roster()
    live: dict[str, list[dict[str, Any]]] = {}
    for room_id, members in roster.members.items():
        live.setdefault(room_id, []).extend(members.values())
    for blob in await roster.others():
        for room_id, members in (blob.get("members") or {}).items():
            live.setdefault(room_id, []).extend(members.values())
    groups = []
    for room in rooms:
        members = live.get(room["id"], [])
        groups.append({**room, "memberCount": len(room["agents"]) + len(members), "live": members})
    set_room_count(len(groups))
    return {"groups": {"totalGroups": len(groups), "groups": groups}}
