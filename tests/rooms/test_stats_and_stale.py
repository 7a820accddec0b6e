"""``/health`` and ``/stats`` report the real rooms and nodes; stale nodes (no frame for
``pingTimeout``) are closed and leave their groups; the gateway pings nodes."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from gateway.delivery.hub import get_hub
from gateway.rpc.hello import health_report, stats_report
from rooms.services import nodes, room_create, room_members
from tests.rooms.test_node_dialect import joined, node, registered  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


async def test_health_and_stats_report_rooms_and_nodes(node):  # noqa: F811
    await database_sync_to_async(room_create)(name="empty-room")
    ws = node()
    node_id = await registered(ws, "reporter")
    gid = await joined(ws, node_id, "reported")
    hub = await get_hub()
    health = await health_report(hub)
    assert health["stats"]["totalGroups"] == 2, health
    assert health["stats"]["registeredNodes"] == 1, health
    stats = await stats_report(hub)
    groups = stats["groups"]
    assert groups["totalGroups"] == 2
    by_name = {g["name"]: g for g in groups["groups"]}
    assert by_name["empty-room"]["memberCount"] == 0
    assert by_name["reported"]["memberCount"] == 1
    assert [m["id"] for m in by_name["reported"]["live"]] == [node_id]
    assert by_name["reported"]["id"] == gid
    modes = [n.get("mode") for n in stats["nodes"]["nodes"]]
    assert "node" in modes, stats["nodes"]


async def test_stale_node_is_closed_and_leaves_its_group(node, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WINGMAN_NODE_PING_TIMEOUT_MS", "400")
    alive, stale = node(), node()
    alive_id, stale_id = await registered(alive, "alive"), await registered(stale, "stale")
    gid = await joined(alive, alive_id, "g")
    await joined(stale, stale_id, "g")
    for _ in range(5):  # alive pings every 100 ms, stale says nothing
        await alive.send({"type": "ping", "nodeId": alive_id})
        assert (await alive.recv())["type"] == "pong"
        await asyncio.sleep(0.1)
    assert await nodes.sweep_stale_once() == 1
    assert await stale.close_code() == 1000
    members = await room_members(room_id=gid)
    assert [m["id"] for m in members["live"]] == [alive_id]
    assert [n["nodeId"] for n in await nodes.node_list()] == [alive_id]
    # the stale node's id is gone: a direct to it is NODE_NOT_FOUND
    await alive.send(
        {"type": "direct", "nodeId": alive_id, "payload": {"targetNodeId": stale_id, "message": 1}}
    )
    assert (await alive.recv())["payload"]["code"] == "NODE_NOT_FOUND"


async def test_gateway_pings_a_silent_node_only(node, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WINGMAN_NODE_PING_INTERVAL_MS", "200")
    quiet, busy = node(), node()
    quiet_id, busy_id = await registered(quiet, "quiet"), await registered(busy, "busy")
    for _ in range(4):
        await busy.send({"type": "ping", "nodeId": busy_id})
        assert (await busy.recv())["type"] == "pong"
        await asyncio.sleep(0.1)
    await nodes.sweep_stale_once()
    ping = await quiet.recv()
    assert ping["type"] == "ping" and isinstance(ping["timestamp"], int), ping
    assert await busy.comm.receive_nothing(0.2), "a node that just spoke was pinged"
    await nodes.sweep_stale_once()  # pinged once per silence, not at every sweep
    assert await quiet.comm.receive_nothing(0.2)
    await quiet.send({"type": "pong", "nodeId": quiet_id, "timestamp": 1})
    assert await quiet.comm.receive_nothing(0.1)  # a pong is answered with nothing
    assert sorted(n["nodeId"] for n in await nodes.node_list()) == sorted([quiet_id, busy_id])


async def test_silent_nodes_are_pinged_a_batch_at_a_time(node, monkeypatch):  # noqa: F811
    """Nodes that fell silent together are not all pinged in the same instant (their pongs
    would come back together and hold up every other frame)."""
    monkeypatch.setenv("WINGMAN_NODE_PING_INTERVAL_MS", "100")
    monkeypatch.setattr(nodes, "PING_BATCH", 2)
    monkeypatch.setattr(nodes, "PING_PAUSE_SECONDS", 0.15)
    sockets = [node() for _ in range(5)]
    for i, ws in enumerate(sockets):
        await registered(ws, f"silent-{i}")
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await nodes.sweep_stale_once()
    took = loop.time() - started
    for ws in sockets:  # every one pinged once
        assert (await ws.recv())["type"] == "ping"
    assert took >= 2 * 0.15, took  # three batches: two pauses between them
