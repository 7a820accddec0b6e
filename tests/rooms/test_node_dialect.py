"""The wingman-node dialect (seed 000; design/protocol.md) driven with the real Wingman node
frames of tests/fixtures/real-client-frames/wingman-client-frames.jsonl, through the
consumer on the real ASGI app, on the embedded backend and on Redis: every frame and every
error code."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from agents.models import Run
from rooms.models import Room
from rooms.services import room_agent_add
from tests.agents.conftest import acreate_agent
from tests.agents.test_wingman_client import TOKEN, Wingman, fixture_conns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def node(clients, wingman_auth):
    """A factory of wingman-node sockets (raw frames) with token auth on."""
    wingman_auth("token", token=TOKEN)
    ports = iter(range(52000, 53000))

    def make() -> Wingman:
        return Wingman(clients(client=("127.0.0.1", next(ports))))

    return make


def real_frames() -> list[dict[str, Any]]:
    frames = fixture_conns()[3]
    assert [f["type"] for f in frames] == ["register", "join_group", "pong"]
    return frames


def with_node_id(frame: dict[str, Any], node_id: str) -> dict[str, Any]:
    """A recorded frame as this run's node sends it (its id is the gateway's choice)."""
    return {**frame, "nodeId": node_id} if "nodeId" in frame else frame


async def registered(ws: Wingman, name: str = "node") -> str:
    await ws.open()
    await ws.send({"type": "register", "payload": {"name": name, "token": TOKEN}, "timestamp": 1})
    ack = await ws.recv()
    assert ack["type"] == "ack", ack
    return ack["nodeId"]


async def joined(ws: Wingman, node_id: str, group: str) -> str:
    payload = {"groupName": group, "createIfNotExists": True}
    await ws.send({"type": "join_group", "nodeId": node_id, "payload": payload})
    ack = await ws.recv()
    assert ack["type"] == "ack" and ack["payload"]["groupName"] == group, ack
    return ack["groupId"]


def typed(kind: str):
    return lambda f: f["type"] == kind


async def test_real_node_frames_register_join_pong(node):
    register, join, pong = real_frames()
    ws = node()
    await ws.open()
    await ws.send(register)
    ack = await ws.recv()
    node_id = ack["nodeId"]
    assert ack["type"] == "ack" and len(node_id) == 16 and int(node_id, 16) >= 0
    assert ack["payload"] == {"nodeId": node_id, "name": "conformance-node"}
    assert isinstance(ack["timestamp"], int)
    await ws.send(with_node_id(join, node_id))
    ack = await ws.recv()
    room = await Room.objects.aget(name="conformance")
    assert ack == {
        "type": "ack",
        "nodeId": node_id,
        "groupId": room.id,
        "payload": {"groupId": room.id, "groupName": "conformance"},
        "timestamp": ack["timestamp"],
    }
    assert room.created_by == f"node:{node_id}"
    await ws.send(with_node_id(pong, node_id))  # answered with nothing
    assert await ws.comm.receive_nothing(0.3)
    await ws.send({"type": "ping", "nodeId": node_id, "timestamp": 2})
    assert (await ws.recv())["type"] == "pong"


async def test_broadcast_reaches_every_other_member_once(node):
    a, b, c = node(), node(), node()
    ids = [await registered(ws, name) for ws, name in ((a, "a"), (b, "b"), (c, "c"))]
    gid = await joined(a, ids[0], "swarm-1")
    assert await joined(b, ids[1], "swarm-1") == gid
    assert await joined(c, ids[2], "swarm-1") == gid
    # 2**70 + 1: an integer past 64 bits arrives as sent, not as a float
    message = {"type": "task", "content": "Review code in PR #123", "n": 2**70 + 1}
    await a.send(
        {"type": "broadcast", "nodeId": ids[0], "payload": {"groupId": gid, "message": message}}
    )
    ack = await a.recv()
    assert ack["type"] == "ack" and ack["groupId"] == gid and ack["payload"]["runIds"] == []
    for ws in (b, c):
        got = (await ws.until(typed("broadcast")))[-1]
        assert got["nodeId"] == ids[0] and got["groupId"] == gid and got["payload"] == message
        assert isinstance(got["timestamp"], int)
    assert await a.comm.receive_nothing(0.3), "the sender got its own broadcast"
    # leave_group: no more broadcasts for c
    await c.send({"type": "leave_group", "nodeId": ids[2], "payload": {"groupId": gid}})
    left = await c.recv()
    assert left["type"] == "ack" and left["payload"] == {"groupId": gid, "left": True}
    await b.send(
        {"type": "broadcast", "nodeId": ids[1], "payload": {"groupId": gid, "message": "2"}}
    )
    await b.recv()
    assert (await a.until(typed("broadcast")))[-1]["payload"] == "2"
    assert await c.comm.receive_nothing(0.3)


async def test_direct_message_and_its_errors(node):
    a, b = node(), node()
    ida, idb = await registered(a, "a"), await registered(b, "b")
    message = {"x": 1, "n": 2**70 + 1}
    await a.send(
        {"type": "direct", "nodeId": ida, "payload": {"targetNodeId": idb, "message": message}}
    )
    assert (await a.recv())["type"] == "ack"
    got = await b.recv()
    assert got["type"] == "direct" and got["nodeId"] == ida and got["targetNodeId"] == idb
    assert got["payload"] == message
    await a.send({"type": "direct", "nodeId": ida, "payload": {"targetNodeId": "00", "message": 1}})
    err = await a.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "NODE_NOT_FOUND", err


async def test_errors_not_registered_group_not_found_invalid_message(node):
    ws = node()
    await ws.open()
    await ws.send({"type": "ping"})  # a ping is answered before register too
    assert (await ws.recv())["type"] == "pong"
    await ws.send({"type": "join_group", "payload": {"groupName": "g"}})
    err = await ws.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "NOT_REGISTERED", err
    node_id = await _register_on(ws, "n")
    for frame, code in (
        (
            {"type": "join_group", "nodeId": node_id, "payload": {"groupName": "nope"}},
            "GROUP_NOT_FOUND",
        ),
        (
            {
                "type": "broadcast",
                "nodeId": node_id,
                "payload": {"groupId": "nope", "message": "m"},
            },
            "GROUP_NOT_FOUND",
        ),
        (
            {"type": "broadcast", "nodeId": node_id, "payload": {"groupId": "nope"}},
            "INVALID_MESSAGE",
        ),
        ({"type": "teleport", "nodeId": node_id}, "INVALID_MESSAGE"),
        ({"type": "join_group", "nodeId": node_id, "payload": {}}, "INVALID_MESSAGE"),
    ):
        await ws.send(frame)
        err = await ws.recv()
        assert err["type"] == "error" and err["payload"]["code"] == code, (frame, err)
        assert err["payload"]["message"]
    assert not await Room.objects.aexists()
    await ws.send({"type": "unregister", "nodeId": node_id})
    assert (await ws.recv())["payload"]["unregistered"] is True
    await ws.send({"type": "join_group", "nodeId": node_id, "payload": {"groupName": "g"}})
    assert (await ws.recv())["payload"]["code"] == "NOT_REGISTERED"


async def _register_on(ws: Wingman, name: str) -> str:
    await ws.send({"type": "register", "payload": {"name": name, "token": TOKEN}})
    ack = await ws.recv()
    assert ack["type"] == "ack", ack
    return ack["nodeId"]


async def test_auth_failed_closes(node):
    ws = node()
    await ws.open()
    await ws.send({"type": "register", "payload": {"name": "x", "token": "wrong"}})
    err = await ws.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "AUTH_FAILED", err
    assert await ws.close_code() == 1008


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
async def test_a_password_mode_gateway_checks_the_register_password(clients, wingman_auth):
    wingman_auth("password", password="hunter2-long")
    ws = Wingman(clients(client=("127.0.0.1", 53001)))
    await ws.open()
    await ws.send({"type": "register", "payload": {"name": "pw", "password": "hunter2-long"}})
    ack = await ws.recv()
    assert ack["type"] == "ack" and ack["payload"]["name"] == "pw", ack
    wrong = Wingman(clients(client=("127.0.0.1", 53002)))
    await wrong.open()
    await wrong.send({"type": "register", "payload": {"name": "x", "password": "nope"}})
    err = await wrong.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "AUTH_FAILED", err
    assert await wrong.close_code() == 1008


async def test_max_nodes_reached(node, monkeypatch):
    monkeypatch.setenv("WINGMAN_MAX_NODES", "2")
    first, second, third = node(), node(), node()
    await registered(first)
    await registered(second)
    await third.open()
    await third.send({"type": "register", "payload": {"name": "3", "token": TOKEN}})
    err = await third.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "MAX_NODES_REACHED", err
    await first.client.close()  # a slot frees when a node goes
    await third.send({"type": "register", "payload": {"name": "3", "token": TOKEN}})
    assert (await third.until(typed("ack")))[-1]["payload"]["name"] == "3"


async def test_rate_limited(node, wingman_policy):
    wingman_policy(rate_limit_per_minute=3)
    ws = node()
    node_id = await registered(ws)
    codes = []
    for _ in range(4):
        await ws.send({"type": "ping", "nodeId": node_id})
        codes.append(await ws.recv())
    assert [f["type"] for f in codes[:3]] == ["pong"] * 3
    assert codes[3]["type"] == "error" and codes[3]["payload"]["code"] == "RATE_LIMITED"
    assert codes[3]["payload"]["retryAfterMs"] > 0


async def test_node_in_a_room_with_agents_gets_their_answers(node):
    await acreate_agent("helper")
    ws, other = node(), node()
    node_id = await registered(ws, "asker")
    other_id = await registered(other, "listener")
    gid = await joined(ws, node_id, "with-agents")
    await joined(other, other_id, "with-agents")
    room = await Room.objects.aget(pk=gid)
    await database_sync_to_async(room_agent_add)(room_id=room.id, agent_id="helper")
    await ws.send(
        {
            "type": "broadcast",
            "nodeId": node_id,
            "payload": {"groupId": gid, "message": {"content": "hello"}},
        }
    )
    ack = await ws.recv()
    [run_id] = ack["payload"]["runIds"]
    answer = (await ws.until(typed("broadcast"), timeout=10))[-1]
    assert answer["nodeId"] == "agent:helper" and answer["payload"] == "You said: hello"
    assert answer["runId"] == run_id
    frames = await other.until(lambda f: f["type"] == "broadcast" and f["nodeId"] == "agent:helper")
    assert frames[0]["payload"] == {"content": "hello"}  # the question first, then the answer
    assert await Run.objects.acount() == 1  # the answer started nothing
