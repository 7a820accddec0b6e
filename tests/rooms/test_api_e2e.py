"""``POST /api/rooms/<id>/broadcast`` on the real gateway process: 202 with the run ids at
once, the runs execute on the server's loop and their answers land in the room's history;
a sequential room answers with its first run and the later agents ``pending``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.gateway_process import TOKEN, GatewayProcess
from tests.rooms.e2e import AGENTS, trio_gateway
from wingman.client import GatewayClient

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from trio_gateway(tmp_path_factory, "rooms-api", model="wingman:echo")


@pytest.fixture
def api(gw: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.http_url, headers=AUTH, timeout=15.0) as client:
        yield client


def history_answers(api: httpx.Client, room_id: str, count: int) -> list[dict[str, Any]]:
    """The room's answer entries once ``count`` are there (bounded wait)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        entries = api.get(f"/api/rooms/{room_id}/history").json()["messages"]
        answers = [e for e in entries if e.get("runId")]
        if len(answers) >= count:
            return answers
        time.sleep(0.05)
    raise AssertionError(f"{count} answers not recorded: {entries}")


def test_broadcast_is_202_with_the_run_ids(api):
    room = api.post("/api/rooms", json={"name": "par", "agents": list(AGENTS)}).json()
    answer = api.post(f"/api/rooms/{room['id']}/broadcast", json={"message": "review PR 123"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["roomId"] == room["id"] and body["strategy"] == "parallel"
    assert [r["agentId"] for r in body["runs"]] == list(AGENTS) and body["pending"] == []
    assert body["runIds"] == [r["runId"] for r in body["runs"]]
    first = api.get(f"/api/rooms/{room['id']}/history").json()["messages"][0]
    assert first["content"] == "review PR 123" and first["broadcastId"] == body["broadcastId"]
    for run in body["runs"]:
        assert run["sessionKey"] == f"agent:{run['agentId']}:room:{room['id']}"
    answers = history_answers(api, room["id"], 3)
    assert {a["runId"] for a in answers} == set(body["runIds"])
    assert {a["content"] for a in answers} == {"You said: review PR 123"}
    for run_id in body["runIds"]:
        run = api.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "ok" and run["source"] == "room", run
    entries = api.get(f"/api/rooms/{room['id']}/history", params={"limit": 1}).json()
    assert len(entries["messages"]) == 1


def test_sequential_broadcast_answers_with_its_first_run(api):
    room = api.post(
        "/api/rooms", json={"name": "seq", "strategy": "sequential", "agents": ["beta", "alpha"]}
    ).json()
    body = api.post(f"/api/rooms/{room['id']}/broadcast", json={"message": "plan it"}).json()
    assert body["strategy"] == "sequential"
    assert [r["agentId"] for r in body["runs"]] == ["beta"] and body["pending"] == ["alpha"]
    answers = history_answers(api, room["id"], 2)
    assert [a["agentId"] for a in answers] == ["beta", "alpha"]
    assert "You said: plan it" in answers[1]["content"]  # alpha saw beta's answer
    assert "[beta]" in answers[1]["content"]


def test_bad_broadcast_changes_nothing(api):
    room = api.post("/api/rooms", json={"name": "bad", "agents": ["alpha"]}).json()
    for body, field in [({}, "message"), ({"message": " "}, "message"), ({"msg": "x"}, "msg")]:
        answer = api.post(f"/api/rooms/{room['id']}/broadcast", json=body)
        assert answer.status_code == 400 and field in answer.json(), answer.text
    assert api.get(f"/api/rooms/{room['id']}/history").json()["messages"] == []
    assert api.post("/api/rooms/nope/broadcast", json={"message": "x"}).status_code == 404


def test_members_lists_a_live_websocket_member(api, gw):
    """A connection that joined over the WebSocket is a live member in the REST answer, and
    is gone once it disconnects."""
    room = api.post("/api/rooms", json={"name": "live", "agents": ["gamma"]}).json()
    seen: dict[str, Any] = {}

    async def member() -> None:
        async with GatewayClient(f"{gw.url}ws", token=TOKEN) as client:
            await client.call("rooms.join", {"roomId": room["id"]})
            seen["during"] = await asyncio.to_thread(
                lambda: api.get(f"/api/rooms/{room['id']}/members").json()
            )

    asyncio.run(member())
    live = seen["during"]["live"]
    assert [m["kind"] for m in live] == ["client"] and live[0]["connId"], live
    assert seen["during"]["agents"] == [{"agentId": "gamma", "position": 0}]
    deadline = time.monotonic() + 5
    while api.get(f"/api/rooms/{room['id']}/members").json()["live"]:
        assert time.monotonic() < deadline, "the closed connection is still a member"
        time.sleep(0.05)
