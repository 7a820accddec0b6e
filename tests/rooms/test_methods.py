"""The ``rooms.*`` methods through the real ASGI app (``tests.gateway.communicator``), on the
embedded backend and on the real Redis: CRUD, live membership, a broadcast's runs and
events, sender exclusion, history, and every bad input answered without a change."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from rooms.models import Room, RoomAgent, RoomMessage
from tests.agents.conftest import TERMINAL_TYPES, acreate_agent
from tests.gateway.communicator import Client

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = 10.0


@pytest.fixture
async def trio(backend):
    """Three agents on the offline echo model."""
    for agent_id in ("alpha", "beta", "gamma"):
        await acreate_agent(agent_id, name=agent_id.title())
    return ["alpha", "beta", "gamma"]


async def ok(c: Client, method: str, params: dict | None = None) -> dict:
    res = await c.call(method, params)
    assert res["ok"], res
    return res["payload"]


async def error(c: Client, method: str, params: dict | None = None) -> dict:
    res = await c.call(method, params)
    assert not res["ok"], res
    return res["error"]


async def connected(clients) -> Client:
    c = clients()
    await c.handshake()
    return c


async def room_counts() -> tuple[int, int, int]:
    return (
        await Room.objects.acount(),
        await RoomAgent.objects.acount(),
        await RoomMessage.objects.acount(),
    )


async def call_keeping(c: Client, method: str, params: dict) -> tuple[dict, list[dict]]:
    """The reply's payload and the frames (events) that arrived before it."""
    rid = f"r-{uuid.uuid4().hex[:8]}"
    await c.send({"type": "req", "id": rid, "method": method, "params": params})
    res, before = await c.recv_until(lambda f: f.get("type") == "res" and f["id"] == rid, FRAME)
    assert res["ok"], res
    return res["payload"], before


def _ended_and_relayed(frames: list[dict]) -> tuple[set[str], set[str]]:
    ended = {
        f["payload"]["runId"]
        for f in frames
        if f.get("event") == "agent" and f["payload"].get("type") in TERMINAL_TYPES
    }
    relayed = {
        f["payload"]["runId"]
        for f in frames
        if f.get("event") == "room.message" and f["payload"].get("runId")
    }
    return ended, relayed


async def until_answered(c: Client, run_ids: set[str], frames: list[dict] | None = None):
    """Frames until every run in ``run_ids`` sent its terminal ``agent`` event and its
    answer was relayed to the room (``room.message`` from the agent); ``frames``: those
    read already."""
    frames = list(frames or [])
    for _ in range(5000):
        ended, relayed = _ended_and_relayed(frames)
        if run_ids <= ended and run_ids <= relayed:
            return frames
        frames.append(await c.recv(FRAME))
    raise AssertionError(f"runs did not end: {run_ids - ended}")


async def history_with(c: Client, room_id: str, count: int) -> list[dict]:
    """``rooms.history`` once it holds ``count`` entries (written in batches: bounded wait)."""
    for _ in range(200):
        entries = (await ok(c, "rooms.history", {"roomId": room_id}))["messages"]
        if len(entries) >= count:
            return entries
        await asyncio.sleep(0.02)
    raise AssertionError(f"history has {len(entries)} of {count} entries: {entries}")


async def test_create_list_get_update_delete(clients, trio):
    c = await connected(clients)
    room = await ok(
        c,
        "rooms.create",
        {"name": "review", "description": "PRs", "strategy": "sequential", "agents": trio},
    )
    assert room["name"] == "review" and room["strategy"] == "sequential"
    assert room["agents"] == trio and room["createdBy"].startswith("conn:")
    assert (await ok(c, "rooms.list"))["rooms"] == [room]
    assert await ok(c, "rooms.get", {"roomId": room["id"]}) == room
    assert (await ok(c, "rooms.get", {"roomId": "review"}))["id"] == room["id"]  # by name
    changed = await ok(
        c, "rooms.update", {"roomId": room["id"], "strategy": "parallel", "agents": ["gamma"]}
    )
    assert changed["strategy"] == "parallel" and changed["agents"] == ["gamma"]
    assert changed["description"] == "PRs" and changed["name"] == "review"
    assert await ok(c, "rooms.delete", {"roomId": room["id"]}) == {
        "roomId": room["id"],
        "deleted": True,
    }
    assert (await ok(c, "rooms.list"))["rooms"] == []
    assert (await error(c, "rooms.get", {"roomId": room["id"]}))["code"] == "NOT_FOUND"


async def test_bad_input_changes_nothing(clients, trio):
    c = await connected(clients)
    room = await ok(c, "rooms.create", {"name": "r1", "agents": ["alpha"]})
    before = await room_counts()
    bad = [
        ("rooms.create", {"name": ""}, "INVALID_REQUEST"),
        ("rooms.create", {"name": "   "}, "INVALID_REQUEST"),
        ("rooms.create", {"name": "x", "strategy": "random"}, "INVALID_REQUEST"),
        ("rooms.create", {"name": "x", "colour": "red"}, "INVALID_REQUEST"),
        ("rooms.create", {"name": "x", "agents": ["alpha", "nobody"]}, "NOT_FOUND"),
        ("rooms.create", {"name": "x", "agents": ["alpha", "alpha"]}, "INVALID_REQUEST"),
        ("rooms.create", {"name": "r1"}, "CONFLICT"),
        ("rooms.update", {"roomId": room["id"], "agents": ["nobody"]}, "NOT_FOUND"),
        ("rooms.update", {"roomId": room["id"], "strategy": "x"}, "INVALID_REQUEST"),
        ("rooms.update", {"roomId": room["id"], "agents": None}, "INVALID_REQUEST"),
        ("rooms.update", {"roomId": "missing", "name": "y"}, "NOT_FOUND"),
        ("rooms.delete", {"roomId": "missing"}, "NOT_FOUND"),
        ("rooms.join", {"roomId": "missing"}, "NOT_FOUND"),
        ("rooms.join", {}, "INVALID_REQUEST"),
        ("rooms.broadcast", {"roomId": room["id"], "message": "  "}, "INVALID_REQUEST"),
        ("rooms.broadcast", {"roomId": "missing", "message": "hi"}, "NOT_FOUND"),
        ("rooms.history", {"roomId": room["id"], "limit": 0}, "INVALID_REQUEST"),
        ("rooms.history", {"roomId": room["id"], "before": "x"}, "INVALID_REQUEST"),
        ("rooms.members", {"roomId": "missing"}, "NOT_FOUND"),
    ]
    for method, params, code in bad:
        err = await error(c, method, params)
        assert err["code"] == code, (method, params, err)
        assert err["message"], err
    assert await room_counts() == before
    assert (await ok(c, "rooms.get", {"roomId": room["id"]}))["agents"] == ["alpha"]


async def test_join_members_leave_with_member_events(clients, trio):
    a, b = await connected(clients), await connected(clients)
    room = await ok(a, "rooms.create", {"name": "lobby", "agents": ["alpha"]})
    joined = await ok(a, "rooms.join", {"roomId": room["id"]})
    assert joined["id"] == room["id"]
    await ok(b, "rooms.join", {"roomId": "lobby"})
    event, _ = await a.recv_until(lambda f: f.get("event") == "room.member", FRAME)
    assert event["payload"]["action"] == "join" and event["payload"]["roomId"] == room["id"]
    members = await ok(a, "rooms.members", {"roomId": room["id"]})
    assert members["agents"] == [{"agentId": "alpha", "position": 0}]
    assert [m["kind"] for m in members["live"]] == ["client", "client"]
    assert await ok(b, "rooms.leave", {"roomId": room["id"]}) == {
        "roomId": room["id"],
        "left": True,
    }
    event, _ = await a.recv_until(lambda f: f.get("event") == "room.member", FRAME)
    assert event["payload"]["action"] == "leave"
    assert len((await ok(a, "rooms.members", {"roomId": room["id"]}))["live"]) == 1
    assert (await ok(b, "rooms.leave", {"roomId": room["id"]}))["left"] is False


async def test_broadcast_runs_every_agent_and_excludes_the_sender(clients, trio):
    sender, listener = await connected(clients), await connected(clients)
    room = await ok(
        sender, "rooms.create", {"name": f"swarm-{uuid.uuid4().hex[:4]}", "agents": trio}
    )
    await ok(sender, "rooms.join", {"roomId": room["id"]})
    await ok(listener, "rooms.join", {"roomId": room["id"]})
    answer, early = await call_keeping(
        sender, "rooms.broadcast", {"roomId": room["id"], "message": "review PR 123"}
    )
    assert not [f for f in early if f.get("event") == "agent"], "run events before the reply"
    assert answer["roomId"] == room["id"] and answer["strategy"] == "parallel"
    assert [r["agentId"] for r in answer["runs"]] == trio
    assert answer["runIds"] == [r["runId"] for r in answer["runs"]]
    assert len(set(answer["runIds"])) == 3
    for run in answer["runs"]:
        assert run["sessionKey"] == f"agent:{run['agentId']}:room:{room['id']}"
    run_ids = set(answer["runIds"])
    for c in (sender, listener):
        frames = await until_answered(c, run_ids, early if c is sender else None)
        agent_events = [f["payload"] for f in frames if f.get("event") == "agent"]
        for run in answer["runs"]:
            steps = [e for e in agent_events if e["runId"] == run["runId"]]
            assert steps[0]["type"] == "agent-start" and steps[-1]["type"] == "agent-complete"
            assert {e["agentId"] for e in steps} == {run["agentId"]}
            assert {e["roomId"] for e in steps} == {room["id"]}
        prompts = [
            f["payload"]
            for f in frames
            if f.get("event") == "room.message" and not f["payload"].get("agentId")
        ]
        # sender exclusion: only the other member hears the message itself
        assert len(prompts) == (0 if c is sender else 1), prompts
    entries = await history_with(sender, room["id"], 4)
    assert entries[0]["content"] == "review PR 123" and "agentId" not in entries[0]
    answers = {e["agentId"]: e for e in entries[1:]}
    assert set(answers) == set(trio)
    assert {e["runId"] for e in answers.values()} == run_ids
    assert all(e["status"] == "ok" and e["content"] for e in answers.values())
