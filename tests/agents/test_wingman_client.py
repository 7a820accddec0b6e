"""The wingman-client dialect (seed 001; design/protocol.md) with agents: the real Wingman
CLI frames from tests/fixtures/real-client-frames/wingman-client-frames.jsonl, through the
consumer on the real ASGI app, on the embedded backend and on Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.models import Run, RunStatus
from gateway.protocol.errors import CloseCode
from tests.agents.conftest import acreate_agent
from tests.fixtures import client_frames
from tests.gateway.communicator import Client

pytestmark = pytest.mark.django_db(transaction=True)

TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")
TOKEN = "secret"


def fixture_conns() -> dict[int, list[dict[str, Any]]]:
    return client_frames("wingman-client-frames.jsonl")


class Wingman:
    """A wingman-client socket: raw JSON frames (the canonical validator does not apply)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.comm = client.comm

    async def open(self) -> None:
        await self.client.open()  # connect.challenge is sent to every socket

    async def send(self, frame: dict[str, Any]) -> None:
        await self.client.send(frame)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        message = await self.comm.receive_output(timeout)
        assert message["type"] == "websocket.send", f"expected a frame, got {message}"
        frame = json.loads(message["text"])
        assert isinstance(frame.get("type"), str), frame
        return frame

    async def until(self, predicate, timeout: float = 5, limit: int = 2000) -> list[dict]:
        frames = []
        for _ in range(limit):
            frames.append(await self.recv(timeout))
            if predicate(frames[-1]):
                return frames
        raise AssertionError(f"no matching frame in {limit}: {frames[-3:]}")

    async def connect(self, frame: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.open()
        await self.send(
            frame
            or {
                "type": "connect",
                "id": "conn-1",
                "client": {"instanceId": "cli-1", "clientType": "cli"},
                "auth": {"token": TOKEN},
                "timestamp": 1,
            }
        )
        return await self.recv()

    async def close_code(self, timeout: float = 3) -> int:
        for _ in range(20):
            message = await self.comm.receive_output(timeout)
            if message["type"] == "websocket.close":
                return message.get("code", 1000)
        raise AssertionError("server did not close")


@pytest.fixture
def wingman(clients, wingman_auth):
    wingman_auth("token", token=TOKEN)
    ports = iter(range(51000, 52000))

    def make() -> Wingman:
        return Wingman(clients(client=("127.0.0.1", next(ports))))

    return make


def is_terminal(frame: dict, request_id: str) -> bool:
    return (
        frame["type"] == "event:agent"
        and frame.get("id") == request_id
        and frame["payload"]["type"] in TERMINAL
    )


# --------------------------------------------------------------------------------------
# the captured Wingman CLI frames
# --------------------------------------------------------------------------------------
async def test_real_cli_agent_frames(wingman):
    await acreate_agent("coder")
    connect, request = fixture_conns()[1]
    assert request["type"] == "req:agent" and request["payload"]["agentId"] == "coder"
    ws = wingman()
    ready = await ws.connect(connect)
    assert ready["type"] == "res" and ready["id"] == connect["id"]
    assert ready["ok"] is True and ready["payload"] == "gateway-ready"
    assert isinstance(ready["timestamp"], int)

    await ws.send(request)
    frames = await ws.until(lambda f: is_terminal(f, request["id"]))
    ack, events = frames[0], frames[1:]
    assert ack["type"] == "ack" and ack["id"] == request["id"], ack
    a = ack["payload"]
    assert a["action"] == "agent" and a["status"] == "accepted"
    assert a["agentId"] == "coder"
    assert a["sessionKey"] == "agent:coder:cli:channel:cli"
    for frame in events:
        assert frame["type"] == "event:agent", frame
        assert frame["id"] == request["id"], frame
        assert frame["clientId"] == "gateway"
        assert isinstance(frame["timestamp"], int)
        assert frame["payload"]["runId"] == a["runId"]
    payloads = [f["payload"] for f in events]
    kinds = [p["type"] for p in payloads]
    assert kinds[0] == "agent-start" and kinds[-1] == "agent-complete"
    assert set(kinds[1:-1]) == {"agent-stream"}
    assert [p["seq"] for p in payloads] == list(range(1, len(payloads) + 1))
    assert payloads[0]["agent"] == "coder" and payloads[0]["prompt"] == "conformance ping"
    assert payloads[-1]["result"]["text"] == "You said: conformance ping"
    assert "".join(p.get("text", "") for p in payloads) == "You said: conformance ping"
    # the run's end is the terminal event: no canonical second res follows
    assert await ws.comm.receive_nothing(0.3)
    run = await Run.objects.aget(pk=a["runId"])
    assert run.status == RunStatus.OK


async def test_real_cli_wrong_token(wingman):
    [connect] = fixture_conns()[2]
    ws = wingman()
    res = await ws.connect(connect)
    assert res == {
        "type": "res",
        "id": connect["id"],
        "ok": False,
        "payload": "authentication failed",
        "timestamp": res["timestamp"],
    }
    assert await ws.close_code() == CloseCode.POLICY_VIOLATION


# --------------------------------------------------------------------------------------
# more of the dialect
# --------------------------------------------------------------------------------------
async def test_agent_for_a_missing_agent_is_an_agent_error_event(wingman):
    ws = wingman()
    assert (await ws.connect())["ok"] is True
    await ws.send(
        {"type": "req:agent", "id": "q-ghost", "payload": {"agentId": "ghost", "content": "hi"}}
    )
    frame = await ws.recv()
    assert frame["type"] == "event:agent" and frame["id"] == "q-ghost"
    assert frame["clientId"] == "gateway"
    assert frame["payload"]["type"] == "agent-error"
    assert "ghost" in frame["payload"]["error"]
    assert await ws.comm.receive_nothing(0.2)


async def test_agent_with_a_bad_payload_is_an_agent_error_event(wingman):
    ws = wingman()
    await ws.connect()
    await ws.send({"type": "req:agent", "id": "q-bad", "payload": {"agentId": "main"}})
    frame = await ws.recv()
    assert frame["type"] == "event:agent" and frame["id"] == "q-bad"
    assert frame["payload"]["type"] == "agent-error"
    assert "content" in frame["payload"]["error"]


async def test_cancel_by_request_id(wingman):
    await acreate_agent("slowpoke", model="wingman:slow")
    ws = wingman()
    await ws.connect()
    await ws.send(
        {
            "type": "req:agent",
            "id": "q-slow",
            "payload": {"agentId": "slowpoke", "content": "/stream 100"},
        }
    )
    await ws.until(lambda f: f["type"] == "event:agent" and f["payload"]["type"] == "agent-stream")
    await ws.send({"type": "req:agent:cancel", "id": "x-1", "payload": {"requestId": "q-slow"}})
    frames = await ws.until(lambda f: is_terminal(f, "q-slow"))
    [ack] = [f for f in frames if f["type"] == "ack"]
    assert ack["id"] == "x-1"
    assert ack["payload"] == {"action": "cancel", "requestId": "q-slow", "status": "cancelled"}
    assert frames[-1]["payload"]["type"] == "agent-cancelled"
    assert (
        sum(1 for f in frames if f["type"] == "event:agent" and f["payload"]["type"] in TERMINAL)
        == 1
    )
    # the run is over: cancelling again says so
    await ws.send({"type": "req:agent:cancel", "id": "x-2", "payload": {"requestId": "q-slow"}})
    again = await ws.recv()
    assert again["type"] == "ack" and again["payload"]["status"] != "cancelled", again
    assert again["payload"]["requestId"] == "q-slow"


async def test_cancel_sent_right_behind_the_request(wingman):
    """A client may pipeline req:agent and its cancel: one terminal event either way, and
    when the ack says cancelled, the run was cancelled."""
    await acreate_agent("slowpoke", model="wingman:slow")
    ws = wingman()
    await ws.connect()
    await ws.send(
        {
            "type": "req:agent",
            "id": "q-pipe",
            "payload": {"agentId": "slowpoke", "content": "/stream 10"},
        }
    )
    await ws.send({"type": "req:agent:cancel", "id": "x-pipe", "payload": {"requestId": "q-pipe"}})
    frames = await ws.until(lambda f: is_terminal(f, "q-pipe"))
    ack = next(f for f in frames if f["type"] == "ack" and f["id"] == "x-pipe")
    assert ack["payload"]["status"] == "cancelled"
    assert frames[-1]["payload"]["type"] == "agent-cancelled", [
        f["payload"].get("type") for f in frames if f["type"] == "event:agent"
    ]


async def test_session_subscribe_ack_and_events(wingman, clients):
    await acreate_agent("main", is_default=True)
    ws = wingman()
    await ws.connect()
    operator = clients(client=("127.0.0.1", 52001))
    await operator.handshake(auth={"token": TOKEN})
    key = (await operator.call("sessions.create", {"name": "watched"}))["payload"]["sessionKey"]

    await ws.send({"type": "session_subscribe", "id": "s-1", "payload": {"sessionId": key}})
    ack = await ws.recv()
    assert ack["type"] == "ack" and ack["id"] == "s-1"
    assert ack["payload"] == {
        "action": "session_subscribe",
        "sessionId": key,
        "status": "subscribed",
    }

    res = await operator.call("agent", {"message": "seen by the CLI", "sessionKey": key})
    run_id = res["payload"]["runId"]
    frames = await ws.until(
        lambda f: f["type"] == "event:agent" and f["payload"]["type"] in TERMINAL
    )
    agent_frames = [f for f in frames if f["type"] == "event:agent"]
    assert {f["payload"]["runId"] for f in agent_frames} == {run_id}
    assert agent_frames[0]["payload"]["type"] == "agent-start"
    assert agent_frames[-1]["payload"]["type"] == "agent-complete"
    notes = [f for f in frames if f["type"] == "event:session.message"]
    assert [n["payload"]["message"]["content"] for n in notes] == ["seen by the CLI"]

    await ws.send({"type": "session_unsubscribe", "id": "s-2", "payload": {"sessionId": key}})
    unsub = await ws.recv()
    assert unsub["payload"] == {
        "action": "session_unsubscribe",
        "sessionId": key,
        "status": "unsubscribed",
    }
    await ws.send(
        {"type": "session_subscribe", "id": "s-3", "payload": {"sessionId": "agent:main:nope"}}
    )
    missing = await ws.recv()
    assert missing["type"] == "error" and missing["payload"]["code"] == "NOT_FOUND"


async def test_unknown_message_type(wingman):
    ws = wingman()
    await ws.connect()
    await ws.send({"type": "req:teleport", "id": "t-1", "payload": {}})
    frame = await ws.recv()
    assert frame["type"] == "error"
    assert frame["payload"]["code"] == "UNKNOWN_MESSAGE_TYPE"
    assert "req:teleport" in frame["payload"]["message"]
    # the socket stays usable
    await ws.send({"type": "req:agent:cancel", "id": "x-none", "payload": {"requestId": "nope"}})
    assert (await ws.recv())["type"] in ("ack", "error")


async def test_connect_without_client_info(wingman):
    ws = wingman()
    res = await ws.connect(
        {"type": "connect", "id": "c-noclient", "auth": {"token": TOKEN}, "timestamp": 1}
    )
    assert res["type"] == "res" and res["id"] == "c-noclient", res
    assert res["ok"] is False and res["payload"] == "missing client info"
    assert await ws.close_code() == CloseCode.POLICY_VIOLATION
