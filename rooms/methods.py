"""The ``rooms.*`` methods on the gateway's method registry (every dialect).

``rooms.join``/``rooms.leave`` make the calling connection a live member of the room (it
receives the room's ``agent``, ``room.message`` and ``room.member`` events; it is gone
when it disconnects); ``rooms.broadcast`` answers with the run ids of the member agents.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async

from gateway.protocol.rooms import (
    RoomIdParams,
    RoomsBroadcastParams,
    RoomsCreateParams,
    RoomsHistoryParams,
    RoomsListParams,
    RoomsUpdateParams,
)
from gateway.rpc import CallContext, registry
from rooms import selectors
from rooms.services import broadcast as broadcast_service
from rooms.services import limits, live
from rooms.services import rooms as room_service
from rooms.services.broadcast import Sender

db = database_sync_to_async


def _creator(ctx: CallContext) -> str:
    return f"conn:{ctx.conn_id}"


def _name(ctx: CallContext) -> str:
    client = ctx.client
    if client is None:
        return ctx.conn_id
    return client.display_name or client.instance_id or client.client_id


def _detail(room_id: str) -> dict[str, Any]:
    return selectors.room_data(selectors.room_get(room_id=room_id))


@registry.method("rooms.list", RoomsListParams)
async def rooms_list(ctx: CallContext, params: RoomsListParams) -> dict[str, Any]:
    """Rooms, oldest first, with their member agents (the first ``limit``)."""
    return {"rooms": (await db(selectors.room_list)())[: params.limit]}


@registry.method("rooms.get", RoomIdParams)
async def rooms_get(ctx: CallContext, params: RoomIdParams) -> dict[str, Any]:
    """One room (by id, or by name)."""
    return await db(_detail)(params.room_id)


@registry.method("rooms.create", RoomsCreateParams)
async def rooms_create(ctx: CallContext, params: RoomsCreateParams) -> dict[str, Any]:
    """A new room with its member agents (in turn order)."""
    room = await db(room_service.room_create)(
        name=params.name,
        description=params.description,
        strategy=params.strategy,
        metadata=params.metadata,
        agent_ids=params.agents,
        created_by=_creator(ctx),
    )
    return await db(selectors.room_data)(room)


@registry.method("rooms.update", RoomsUpdateParams)
async def rooms_update(ctx: CallContext, params: RoomsUpdateParams) -> dict[str, Any]:
    """Change some fields; ``agents`` replaces the member agents."""
    changes = params.model_dump(exclude={"room_id"}, exclude_unset=True)
    if "agents" in changes:
        changes["agent_ids"] = changes.pop("agents")
    room = await db(room_service.room_update)(room_id=params.room_id, **changes)
    return await db(selectors.room_data)(room)


@registry.method("rooms.delete", RoomIdParams)
async def rooms_delete(ctx: CallContext, params: RoomIdParams) -> dict[str, Any]:
    """Delete the room with its history (live members are told with ``room.member``)."""
    room = await db(selectors.room_get)(room_id=params.room_id)
    await db(room_service.room_delete)(room_id=room.id)
    return {"roomId": room.id, "deleted": True}


@registry.method("rooms.join", RoomIdParams)
async def rooms_join(ctx: CallContext, params: RoomIdParams) -> dict[str, Any]:
    """This connection becomes a live member: it receives the room's events until it
    leaves or disconnects."""
    room, _joined = await live.room_join(
        room_id=params.room_id, conn_id=ctx.conn_id, kind="client", name=_name(ctx)
    )
    return await db(selectors.room_data)(room)


@registry.method("rooms.leave", RoomIdParams)
async def rooms_leave(ctx: CallContext, params: RoomIdParams) -> dict[str, Any]:
    """This connection stops being a live member."""
    left = await live.room_leave(room_id=params.room_id, conn_id=ctx.conn_id)
    return {"roomId": params.room_id, "left": left}


@registry.method("rooms.members", RoomIdParams, scope="operator.read")
async def rooms_members(ctx: CallContext, params: RoomIdParams) -> dict[str, Any]:
    """Member agents (persisted) and live members (connections, nodes)."""
    return await live.room_members(room_id=params.room_id)


@registry.method("rooms.broadcast", RoomsBroadcastParams)
async def rooms_broadcast(ctx: CallContext, params: RoomsBroadcastParams) -> dict[str, Any]:
    """Every member agent runs once on the message (the room's strategy, or ``strategy``);
    live members except this connection receive it. Answers with the run ids (a sequential
    room's later agents are ``pending``: their runs start as their turn comes). No run
    event precedes the reply."""
    hold = asyncio.Event()  # the runs start once the reply with their ids is out

    async def release() -> None:
        hold.set()

    answer = await broadcast_service.room_broadcast(
        room_id=params.room_id,
        message=params.message,
        strategy=params.strategy,
        sender=Sender(kind="client", id=ctx.conn_id, name=_name(ctx), conn_id=ctx.conn_id),
        hold=hold,
    )
    ctx.after_reply(release)
    return answer


@registry.method("rooms.history", RoomsHistoryParams)
async def rooms_history(ctx: CallContext, params: RoomsHistoryParams) -> dict[str, Any]:
    """The room's messages and agents' answers, oldest first (the last ``limit``)."""
    room = await db(selectors.room_get)(room_id=params.room_id)
    messages = await db(selectors.room_history)(
        room_id=room.id, limit=min(params.limit, limits.history_limit()), before=params.before
    )
    return {"roomId": room.id, "messages": messages}
