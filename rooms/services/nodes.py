"""Nodes (seed 000): connections registered as swarm members, with a gateway-chosen hex id,
addressable for direct messages from any gateway process, counted against ``maxNodes``,
and dropped when they disconnect or go stale (no frame for ``pingTimeout``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from channels.db import database_sync_to_async

from gateway.delivery import publish
from gateway.delivery.hub import current_hub
from gateway.protocol import events
from gateway.protocol.dialects.base import now_ms
from gateway.protocol.errors import CloseCode, ErrorCode, GatewayError
from rooms import selectors
from rooms.runtime.roster import local_rosters, set_room_count
from rooms.services import limits
from rooms.services.live import leave_all, this_roster

logger = logging.getLogger(__name__)


def node_topic(node_id: str) -> str:
    """The event topic of one node (its direct messages)."""
    return f"node:{node_id}"


async def node_register(
    *, conn_id: str, name: str, capabilities: list[str] | None = None
) -> dict[str, Any]:
    """Register the connection ``conn_id`` (of this process) as a node; returns its entry
    ``{nodeId, name, capabilities, connId, connectedAt, lastSeen}`` (``nodeId``: 16 hex
    digits). Registering again returns the same node. ``MAX_NODES_REACHED`` when every
    gateway process together has ``maxNodes`` nodes."""
    hub, roster = await this_roster()
    existing = roster.node_for_conn(conn_id)
    if existing is not None:
        return existing
    limit = limits.max_nodes()
    if len(await roster.all_nodes()) >= limit:
        raise GatewayError(
            ErrorCode.MAX_NODES_REACHED, f"maximum number of nodes reached ({limit})"
        )
    now = now_ms()
    entry = {
        "nodeId": secrets.token_hex(8),
        "name": name,
        "capabilities": list(capabilities or []),
        "connId": conn_id,
        "connectedAt": now,
        "lastSeen": now,
    }
    roster.add_node(entry)
    conn = hub.connections.get(conn_id)
    if conn is not None:
        await hub.join_topic(conn, node_topic(entry["nodeId"]))
    await roster.flush()
    return entry


async def node_of(*, conn_id: str) -> dict[str, Any]:
    """The node this connection registered as (and it was seen now); ``NOT_REGISTERED``."""
    _, roster = await this_roster()
    node = roster.node_for_conn(conn_id)
    if node is None:
        raise GatewayError(ErrorCode.NOT_REGISTERED, "node not registered: send register first")
    node["lastSeen"] = now_ms()
    return node


async def node_seen(*, conn_id: str) -> bool:
    """A frame (``ping``, ``pong``, anything) came from this connection: not stale."""
    _, roster = await this_roster()
    node = roster.node_for_conn(conn_id)
    if node is not None:
        node["lastSeen"] = now_ms()
    return node is not None


async def node_unregister(*, conn_id: str, reason: str = "unregistered") -> dict[str, Any]:
    """The connection stops being a node: it leaves its groups and its id is freed.
    ``NOT_REGISTERED`` if it was not one."""
    hub, roster = await this_roster()
    node = roster.node_for_conn(conn_id)
    if node is None:
        raise GatewayError(ErrorCode.NOT_REGISTERED, "node not registered")
    roster.remove_node(node["nodeId"])
    conn = hub.connections.get(conn_id)
    rooms = await leave_all(roster, conn_id, reason)
    if conn is not None:
        await hub.leave_topic(conn, node_topic(node["nodeId"]))
        for room_id in rooms:
            await hub.leave_topic(conn, f"room:{room_id}")
    await roster.flush()
    return node


async def node_direct(*, conn_id: str, target_node_id: str, message: Any) -> dict[str, Any]:
    """A direct message from this connection's node to another node, on any gateway
    process (``node.message``). ``NOT_REGISTERED``; ``NODE_NOT_FOUND`` for no such node."""
    sender = await node_of(conn_id=conn_id)
    _, roster = await this_roster()
    if await roster.find_node(target_node_id) is None:
        raise GatewayError(ErrorCode.NODE_NOT_FOUND, f"node not found: {target_node_id}")
    payload = {
        "fromNodeId": sender["nodeId"],
        "toNodeId": target_node_id,
        "message": message,
        "timestamp": now_ms(),
    }
    await publish.publish_topic(node_topic(target_node_id), events.NODE_MESSAGE, payload)
    return {"targetNodeId": target_node_id, "delivered": True}


async def node_list() -> list[dict[str, Any]]:
    """Every registered node on every gateway process, oldest first (without ``connId``
    internals removed: the Control UI shows which connection it is)."""
    _, roster = await this_roster()
    return await roster.all_nodes()


async def connection_closed(conn_id: str) -> None:
    """A connection of this process closed: it is no node and no room member any more
    (the extension's ``on_disconnect``; its topics are the hub's to drop)."""
    for roster in local_rosters():
        node_id = roster.node_of_conn.get(conn_id)
        rooms = roster.rooms_of_conn.get(conn_id)
        if node_id is None and not rooms:
            continue
        if node_id is not None:
            roster.remove_node(node_id)
        await leave_all(roster, conn_id, "disconnect")
        await roster.flush()


async def sweep_stale_once() -> int:
    """Close this process's nodes that sent nothing for ``pingTimeout`` (their closing
    drops them and their memberships); ping those silent for ``pingInterval``; refresh the
    roster for the other processes. Returns how many were closed."""
    hub = current_hub()
    if hub is None:
        return 0
    closed = 0
    now = now_ms()
    cutoff, quiet = now - limits.node_ping_timeout_ms(), now - limits.node_ping_interval_ms()
    for roster in local_rosters():
        if roster.process_id != hub.id:
            continue
        due: list[str] = []
        for node in list(roster.nodes.values()):
            conn = hub.connections.get(node["connId"])
            if node["lastSeen"] < cutoff or conn is None:
                logger.info("node %s (%s) is stale: closing it", node["nodeId"], node["name"])
                roster.remove_node(node["nodeId"])
                await leave_all(roster, node["connId"], "stale")
                if conn is not None:
                    await conn.close(CloseCode.NORMAL)
                closed += 1
            elif node["lastSeen"] < quiet and node.get("pingedAt", 0) <= node["lastSeen"]:
                node["pingedAt"] = now
                due.append(node["nodeId"])
        await _ping_paced(due, now)
        set_room_count(await database_sync_to_async(selectors.room_count)())
        await roster.all_nodes()  # refreshes the other processes' count for /health
        await roster.flush()
    return closed


#: Pings sent together, then a pause: nodes that registered together fall silent together
#: (a swarm started at once), and a ping to each of hundreds at once, with their pongs
#: coming back together, stalled every other frame for ~50 ms (rooms bench, 1000 nodes).
PING_BATCH = 50
PING_PAUSE_SECONDS = 0.05


async def _ping_paced(node_ids: list[str], now: int) -> None:
    """``node.ping`` each node, :data:`PING_BATCH` at a time (1000 a second at most)."""
    for start in range(0, len(node_ids), PING_BATCH):
        if start:
            await asyncio.sleep(PING_PAUSE_SECONDS)
        for node_id in node_ids[start : start + PING_BATCH]:
            ping = {"nodeId": node_id, "timestamp": now}
            await publish.publish_topic(node_topic(node_id), events.NODE_PING, ping)


async def sweep_stale_forever() -> None:
    """The stale-node sweeper, pinger and roster heartbeat (every ``pingInterval``/4 or
    ``pingTimeout``/4, whichever is shorter, at most 5 s)."""
    while True:
        shortest = min(limits.node_ping_timeout_ms(), limits.node_ping_interval_ms())
        await asyncio.sleep(min(5.0, max(0.2, shortest / 4000)))
        try:
            await sweep_stale_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("stale-node sweep failed")
