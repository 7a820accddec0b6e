"""The ``nodes.*`` methods (seed 000 swarm nodes; the wingman-node dialect's frames) and
``rooms.broadcast.stream`` (the wingman-client ``broadcast`` frame). The canonical
``rooms.*`` methods are in ``methods.py``."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async

from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.nodes import (
    ClientBroadcastParams,
    NodeBroadcastParams,
    NodeDirectParams,
    NodeGroupParams,
    NodeJoinParams,
    NodeRegisterParams,
)
from gateway.protocol.system import NoParams
from gateway.rpc import CallContext, registry
from rooms import selectors
from rooms import services as rooms
from rooms.models import Room, SenderKind

db = database_sync_to_async


@registry.method("nodes.register", NodeRegisterParams)
async def nodes_register(ctx: CallContext, params: NodeRegisterParams) -> dict[str, Any]:
    """Register this connection as a swarm node: ``{nodeId, name}``."""
    node = await rooms.node_register(
        conn_id=ctx.conn_id, name=params.name, capabilities=params.capabilities
    )
    return {"nodeId": node["nodeId"], "name": node["name"]}


@registry.method("nodes.unregister")
async def nodes_unregister(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """Stop being a node (leaving every group); the connection stays open."""
    node = await rooms.node_unregister(conn_id=ctx.conn_id)
    return {"nodeId": node["nodeId"], "unregistered": True}


@registry.method("nodes.ping", public=True)
async def nodes_ping(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """A node's heartbeat: ``{pong: true}`` (it is not stale); answered before ``register``
    too."""
    await rooms.node_seen(conn_id=ctx.conn_id)
    return {"pong": True}


@registry.method("nodes.pong")
async def nodes_pong(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """A node's answer to the gateway's ``ping`` (it is not stale)."""
    return {"seen": await rooms.node_seen(conn_id=ctx.conn_id)}


def _group(group_id: str | None, name: str | None) -> Room | None:
    return selectors.room_find(room_id=group_id) or selectors.room_find(name=name or group_id)


def _group_or_create(params: NodeJoinParams, node_id: str) -> Room:
    room = _group(params.group_id, params.group_name)
    if room is not None:
        return room
    if not params.create_if_not_exists or not params.group_name:
        raise GatewayError(
            ErrorCode.NOT_FOUND, f"group not found: {params.group_id or params.group_name}"
        )
    try:
        return rooms.room_create(
            name=params.group_name,
            description=params.description,
            strategy=params.strategy or "parallel",
            created_by=f"node:{node_id}",
        )
    except GatewayError as exc:  # created by another node meanwhile
        room = _group(None, params.group_name)
        if room is None:
            raise exc from None
        return room


@registry.method("nodes.join", NodeJoinParams)
async def nodes_join(ctx: CallContext, params: NodeJoinParams) -> dict[str, Any]:
    """Join a group (a room) by id or name, creating it if asked: ``{groupId, groupName}``."""
    node = await rooms.node_of(conn_id=ctx.conn_id)
    room = await db(_group_or_create)(params, node["nodeId"])
    await rooms.room_join(
        room_id=room.id,
        conn_id=ctx.conn_id,
        kind=SenderKind.NODE,
        member_id=node["nodeId"],
        name=node["name"],
    )
    return {"groupId": room.id, "groupName": room.name}


@registry.method("nodes.leave", NodeGroupParams)
async def nodes_leave(ctx: CallContext, params: NodeGroupParams) -> dict[str, Any]:
    """Leave a group: ``{groupId, left}``."""
    await rooms.node_of(conn_id=ctx.conn_id)
    room = await db(_group)(params.group_id, params.group_name)
    if room is None:
        raise GatewayError(
            ErrorCode.NOT_FOUND, f"group not found: {params.group_id or params.group_name}"
        )
    left = await rooms.room_leave(room_id=room.id, conn_id=ctx.conn_id)
    return {"groupId": room.id, "left": left}


@registry.method("nodes.broadcast", NodeBroadcastParams)
async def nodes_broadcast(ctx: CallContext, params: NodeBroadcastParams) -> dict[str, Any]:
    """Broadcast to a group: every other member gets it; its agents run on it."""
    node = await rooms.node_of(conn_id=ctx.conn_id)
    sender = rooms.Sender(
        kind=SenderKind.NODE, id=node["nodeId"], name=node["name"], conn_id=ctx.conn_id
    )
    hold = asyncio.Event()  # the runs start once the ack with their ids is out
    result = await rooms.room_broadcast(
        room_id=params.group_id, message=params.message, sender=sender, hold=hold
    )
    if result["runIds"]:  # a room without agents (a swarm of nodes): no task to release
        ctx.after_reply(_releaser(hold))
    return {"groupId": result["roomId"], "broadcastId": result["broadcastId"], **result}


@registry.method("nodes.direct", NodeDirectParams)
async def nodes_direct(ctx: CallContext, params: NodeDirectParams) -> dict[str, Any]:
    """A message to one node, on whichever gateway process it is connected to."""
    return await rooms.node_direct(
        conn_id=ctx.conn_id, target_node_id=params.target_node_id, message=params.message
    )


@registry.method("nodes.list")
async def nodes_list(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """Every registered node: ``{nodes:[{nodeId, name, capabilities, connectedAt,
    lastSeen}]}``."""
    return {"nodes": [_public(n) for n in await rooms.node_list()]}


def _public(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "connId"}


@registry.method("rooms.broadcast.stream", ClientBroadcastParams)
async def rooms_broadcast_stream(ctx: CallContext, params: ClientBroadcastParams) -> dict:
    """Broadcast to a room and stream its agents' runs to this caller: the ``agent`` events
    of every run it starts answer this request (wingman-client ``broadcast``)."""
    room = await db(selectors.room_get)(room_id=params.room_id)
    await ctx.join_topic(rooms.room_topic(room.id))
    client = ctx.client
    name = (client.instance_id or client.client_id) if client else ctx.conn_id
    sender = rooms.Sender(kind=SenderKind.CLIENT, id=ctx.conn_id, name=name, conn_id=ctx.conn_id)
    hold = asyncio.Event()  # the runs start once the ack with their ids is out
    result = await rooms.room_broadcast(
        room_id=room.id,
        message=params.message,
        sender=sender,
        strategy=params.strategy,
        on_run=lambda ticket: ctx.bind(ticket.run_id),
        hold=hold,
    )
    ctx.after_reply(_releaser(hold))
    return result


def _releaser(hold: asyncio.Event):
    async def release() -> None:
        hold.set()

    return release
