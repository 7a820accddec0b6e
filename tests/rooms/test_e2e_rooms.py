"""End to end on the real server (``wingman gateway run`` subprocesses) with real WebSocket
clients: a three-agent parallel room streams three runs at once; a sequential room runs its
agents in turn; nodes join, broadcast, send directs, leave, and a silent node is dropped;
two ``wingman gateway join`` processes talk to each other."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.agents.test_e2e_agents import write_agents_config
from tests.gateway.gateway_process import GatewayFactory
from tests.rooms.e2e import (
    JoinProcess,
    broadcast_reaches,
    create_room,
    direct_reaches,
    node_join,
    node_register,
    raw,
    wingman_client,
)

pytestmark = pytest.mark.e2e
TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")
AGENTS = [
    {"id": "planner", "model": "wingman:slow"},
    {"id": "coder", "model": "wingman:slow"},
    {"id": "critic", "model": "wingman:slow"},
]


@pytest.fixture
def gw(gateway_factory: GatewayFactory, tmp_path: Path):
    write_agents_config(tmp_path / "gw", [{"id": "main", "default": True}, *AGENTS])
    return gateway_factory({"WINGMAN_NODE_PING_TIMEOUT_MS": "1500"}, state_dir=tmp_path / "gw")


def agent_frames(frames: list[dict], request_id: str) -> list[dict]:
    return [f for f in frames if f["type"] == "event:agent" and f.get("id") == request_id]


async def broadcast(client, room: str, content: str, rid: str) -> dict:
    await client.send(
        {"type": "broadcast", "id": rid, "roomId": room, "payload": {"content": content}}
    )
    ack = await client.recv()
    assert ack["type"] == "ack" and ack["id"] == rid, ack
    return ack["payload"]


async def until_ended(client, rid: str, count: int) -> list[dict]:
    ended: set[str] = set()

    def done(f: dict) -> bool:
        if f["type"] == "event:agent" and f.get("id") == rid and f["payload"]["type"] in TERMINAL:
            ended.add(f["payload"]["runId"])
        return len(ended) == count

    start = len(client.frames)
    await client.until(done, timeout=30)
    return agent_frames(client.frames[start:], rid)


async def test_three_agent_parallel_room_streams_three_runs(gw):
    room = create_room(gw, name="review", agent_ids=["planner", "coder", "critic"])
    async with raw(gw.url, "asker") as asker, raw(gw.url, "watcher") as watcher:
        await wingman_client(asker)
        await wingman_client(watcher)
        ack = await broadcast(asker, room, "/stream 8", "b-1")
        assert ack["strategy"] == "parallel" and len(ack["runIds"]) == 3
        frames = await until_ended(asker, "b-1", 3)
        by_run: dict[str, list[dict]] = {}
        order: list[str] = []
        for f in frames:
            p = f["payload"]
            assert p["roomId"] == room
            by_run.setdefault(p["runId"], []).append(p)
            order.append(p["runId"])
        assert set(by_run) == set(ack["runIds"])
        assert {ps[0]["agentId"] for ps in by_run.values()} == {"planner", "coder", "critic"}
        for payloads in by_run.values():
            assert [p["seq"] for p in payloads] == list(range(1, len(payloads) + 1))
            assert payloads[0]["type"] == "agent-start"
            assert payloads[-1]["type"] == "agent-complete"
        # side by side: every run streamed before any of them ended
        first_end = min(order.index(r) + len(by_run[r]) - 1 for r in by_run)
        last_start = max(order.index(r) for r in by_run)
        assert last_start < first_end, "the three runs did not stream at once"
        # a client not in the room got none of it
        await watcher.silent(0.3, lambda f: f["type"] == "event:agent")


async def test_sequential_room_runs_in_turn(gw):
    room = create_room(
        gw, name="pipeline", strategy="sequential", agent_ids=["planner", "coder", "critic"]
    )
    async with raw(gw.url, "asker") as asker:
        await wingman_client(asker)
        ack = await broadcast(asker, room, "review PR #123", "s-1")
        assert ack["pending"] == ["coder", "critic"] and len(ack["runIds"]) == 1
        frames = await until_ended(asker, "s-1", 3)
        agents_in_order = []
        for f in frames:
            agent = f["payload"]["agentId"]
            if not agents_in_order or agents_in_order[-1] != agent:
                agents_in_order.append(agent)
        assert agents_in_order == ["planner", "coder", "critic"], agents_in_order
        starts = [f["payload"] for f in frames if f["payload"]["type"] == "agent-start"]
        assert "[planner] (ok): You said: review PR #123" in starts[1]["prompt"]
        assert "[coder] (ok):" in starts[2]["prompt"]


async def test_nodes_join_broadcast_direct_leave_and_stale_cleanup(gw):
    async with raw(gw.url, "a") as a, raw(gw.url, "b") as b, raw(gw.url, "silent") as s:
        ida, idb = await node_register(a, "a"), await node_register(b, "b")
        ids = await node_register(s, "silent")
        gid = await node_join(a, ida, "swarm-1")
        assert await node_join(b, idb, "swarm-1") == gid
        await node_join(s, ids, "swarm-1")
        message = {"type": "task", "content": "Review code in PR #123"}
        await a.send(
            {"type": "broadcast", "nodeId": ida, "payload": {"groupId": gid, "message": message}}
        )
        got = (await b.until(lambda f: f["type"] == "broadcast"))[-1]
        assert got["nodeId"] == ida and got["groupId"] == gid and got["payload"] == message
        await b.send(
            {"type": "direct", "nodeId": idb, "payload": {"targetNodeId": ida, "message": "psst"}}
        )
        got = (await a.until(lambda f: f["type"] == "direct"))[-1]
        assert got["nodeId"] == idb and got["payload"] == "psst"
        # a and b keep pinging; the silent node is closed after pingTimeout (1.5 s)
        for _ in range(12):
            await a.send({"type": "ping", "nodeId": ida})
            await b.send({"type": "ping", "nodeId": idb})
            await asyncio.sleep(0.25)
        await asyncio.wait_for(s.ws.wait_closed(), 5)
        assert s.ws.close_code == 1000, s.ws.close_code
        await b.send({"type": "leave_group", "nodeId": idb, "payload": {"groupId": gid}})
        await b.until(lambda f: f["type"] == "ack" and f["payload"].get("left") is True)
        await a.send(
            {"type": "broadcast", "nodeId": ida, "payload": {"groupId": gid, "message": "2"}}
        )
        await a.until(lambda f: f["type"] == "ack" and f.get("groupId") == gid)
        await b.silent(0.5, lambda f: f["type"] == "broadcast")
        await a.send(
            {"type": "direct", "nodeId": ida, "payload": {"targetNodeId": ids, "message": 1}}
        )
        err = (await a.until(lambda f: f["type"] == "error"))[-1]
        assert err["payload"]["code"] == "NODE_NOT_FOUND"


async def test_two_join_processes_exchange_broadcasts_and_directs(gw):
    env = dict(gw.env)
    one = JoinProcess([gw.url, "--name", "one", "--group", "swarm"], env)
    two = JoinProcess([gw.url, "--name", "two", "--group", "swarm", "--token", "secret"], env)
    try:
        await one.joined("one", "swarm")
        await two.joined("two", "swarm")
        await broadcast_reaches(one, two, "hello from one")
        await direct_reaches(two, one, "just for you")
    finally:
        one.stop()
        two.stop()


async def test_join_process_reconnects(gateway_factory: GatewayFactory, tmp_path: Path):
    first = gateway_factory(state_dir=tmp_path / "r")
    port = first.port
    node = JoinProcess([first.url, "--name", "again", "--group", "g"], dict(first.env))
    try:
        await node.expect("joined group g")
        first.stop()
        await node.expect("reconnecting in")
        again = gateway_factory(
            {"WINGMAN_PORT": str(port)}, state_dir=tmp_path / "r", args=("--port", str(port))
        )
        assert again.port == port
        await node.expect("registered as again", timeout=30)
        await node.expect("joined group g", timeout=10)
    finally:
        node.stop()


async def test_join_process_on_a_password_mode_gateway(gateway_factory: GatewayFactory):
    pw = "hunter2-long"
    gw = gateway_factory(
        {
            "WINGMAN_AUTH_MODE": "password",
            "WINGMAN_GATEWAY_PASSWORD": pw,
            "WINGMAN_GATEWAY_TOKEN": None,
        }
    )
    env = {k: v for k, v in gw.env.items() if not k.startswith("WINGMAN_GATEWAY_")}
    # stdin /dev/null, as a service's: the node reads nothing and says nothing about it
    args = [gw.url, "--name", "pw", "--group", "g", "--password", pw]
    node = JoinProcess(args, env, stdin=subprocess.DEVNULL)
    wrong = JoinProcess([gw.url, "--name", "nope", "--password", "wrong"], env)
    try:
        await node.joined("pw", "g")
        await wrong.expect("error AUTH_FAILED")
        await wrong.expect("refused this node's credentials")
        assert await asyncio.to_thread(wrong.proc.wait, 15) == 1  # no retrying a bad password
        await asyncio.sleep(0.5)
        assert node.proc.poll() is None
        assert not [line for line in node.lines if "Traceback" in line], node.lines
    finally:
        node.stop()
        wrong.stop()
