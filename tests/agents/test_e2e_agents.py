"""End to end: agent runs through the real gateway process (``wingman gateway run``), with
a real WebSocket client (tests/gateway/gateway_process.py).

- the OpenClaw CLI's captured ``agent`` frame streams and gets its final result;
- a restarted gateway (same state dir) still has the conversation;
- two gateway processes sharing Redis and one PostgreSQL database: a subscriber on
  process 2 sees a run executing on process 1, and can cancel it from there.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests import conftest
from tests.agents.test_api_e2e import sse_events
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    WsClient,
    connect_params,
    connected,
    openclaw_frames,
    wait_until,
    ws_client,
)

pytestmark = pytest.mark.e2e

#: The database fixtures (tests/conftest.py), imported by other modules from here.
shared_database = conftest.shared_database
empty_database = conftest.empty_database
E2E_REDIS_URL = os.environ.get("WINGMAN_E2E_REDIS_URL", "redis://127.0.0.1:6379/5")
TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")
RUN_TIMEOUT = 15.0


def write_agents_config(state_dir: Path, agents: list[dict[str, Any]]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "wingman.config.json").write_text(json.dumps({"agents": {"list": agents}}))


def agent_events(frames: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    return [
        f["payload"]
        for f in frames
        if f.get("event") == "agent" and f["payload"].get("runId") == run_id
    ]


def check_events(events: list[dict[str, Any]], *, run_id: str, terminal: str) -> None:
    assert events, "no agent events"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
    assert all(e["runId"] == run_id for e in events)
    ends = [e["type"] for e in events if e["type"] in TERMINAL]
    assert ends == [terminal], [e["type"] for e in events]
    assert events[-1]["type"] == terminal


async def run_agent(c: WsClient, params: dict[str, Any], rid: str | None = None):
    """``agent`` through a WsClient: (ack payload, final payload, this run's events)."""
    frame = c.request_frame("agent", params, rid)
    await c.send(frame)
    ack = await c.response(frame["id"])
    assert ack["ok"] is True, ack
    assert ack["payload"]["status"] == "accepted", ack
    final = await c.response(frame["id"], timeout=RUN_TIMEOUT)
    assert final["ok"] is True, final
    events = agent_events(c.backlog, ack["payload"]["runId"])
    return ack["payload"], final["payload"], events


async def events_until_terminal(c: WsClient, run_id: str, timeout: float = RUN_TIMEOUT):
    """This run's agent events on ``c`` (backlog first) up to its terminal event."""
    await c.next_event(
        "agent",
        where=lambda f: f["payload"].get("runId") == run_id and f["payload"]["type"] in TERMINAL,
        timeout=timeout,
    )
    return [
        f["payload"]
        for f in c.received
        if f.get("event") == "agent" and f["payload"].get("runId") == run_id
    ]


# --------------------------------------------------------------------------------------
# one embedded gateway
# --------------------------------------------------------------------------------------
async def test_openclaw_agent_frame_streams_and_finishes(gateway: GatewayProcess) -> None:
    connect, agent = openclaw_frames()[7]
    assert agent["method"] == "agent" and agent["params"]["agentId"] == "main"
    async with ws_client(gateway.url, name="openclaw agent") as c:
        await c.send(connect)
        hello = await c.response(connect["id"], method="connect")
        assert hello["ok"] is True, hello
        assert "agent" in hello["payload"]["features"]["methods"]
        await c.send(agent)
        ack = await c.response(agent["id"])
        assert ack["ok"] is True, ack
        a = ack["payload"]
        assert (a["status"], a["agentId"], a["sessionKey"]) == (
            "accepted",
            "main",
            "agent:main:main",
        )
        final = await c.response(agent["id"], timeout=RUN_TIMEOUT)
        assert final["ok"] is True and isinstance(final["id"], str) and final["id"]
        f = final["payload"]
        assert (f["runId"], f["status"], f["summary"]) == (a["runId"], "ok", "completed")
        assert f["result"]["payloads"][0]["text"] == "You said: conformance ping"
        assert f["result"]["text"] == "You said: conformance ping"
        events = agent_events(c.backlog, a["runId"])
        check_events(events, run_id=a["runId"], terminal="agent-complete")
        assert events[0]["type"] == "agent-start"
        assert "".join(e.get("text", "") for e in events) == "You said: conformance ping"

        # the OpenClaw CLI retries with the same idempotencyKey: same run, no second one
        retry = dict(agent, id=f"3:{uuid.uuid4()}")
        await c.send(retry)
        again = await c.response(retry["id"])
        assert again["payload"]["runId"] == a["runId"] and again["payload"]["duplicate"] is True
        again_final = await c.response(retry["id"])
        assert again_final["payload"] == f
        history = await c.ok("chat.history", {"sessionKey": "agent:main:main"})
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]


async def test_conversation_survives_a_restart(gateway_factory: GatewayFactory) -> None:
    gw1 = gateway_factory(name="before")
    key = str(uuid.uuid4())
    async with connected(gw1, name="first") as c:
        a1, f1, _ = await run_agent(c, {"message": "remember me", "idempotencyKey": key})
        assert f1["status"] == "ok"
        _, f2, _ = await run_agent(c, {"message": "and me"})
        assert f2["status"] == "ok"
    assert gw1.stop() == 0, gw1.log_tail()

    gw2 = gateway_factory(name="after", state_dir=gw1.state_dir)
    assert gw2.port is not None
    async with connected(gw2, name="second") as c:
        history = await c.ok("chat.history", {"sessionKey": "agent:main:main"})
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "remember me"),
            ("assistant", "You said: remember me"),
            ("user", "and me"),
            ("assistant", "You said: and me"),
        ]
        sessions = await c.ok("sessions.list", {})
        assert [s["sessionKey"] for s in sessions["sessions"]] == ["agent:main:main"]
        # the idempotency key is remembered across the restart
        frame = c.request_frame("agent", {"message": "remember me", "idempotencyKey": key})
        await c.send(frame)
        ack = await c.response(frame["id"])
        assert ack["payload"]["runId"] == a1["runId"] and ack["payload"]["duplicate"] is True
        final = await c.response(frame["id"])
        assert final["payload"] == f1
        # and the conversation goes on
        _, f3, _ = await run_agent(c, {"message": "third"})
        assert f3["status"] == "ok"
        history = await c.ok("chat.history", {"sessionKey": "agent:main:main"})
        assert len(history["messages"]) == 6


# --------------------------------------------------------------------------------------
# two gateway processes: Redis + one PostgreSQL database
# --------------------------------------------------------------------------------------
def local_cluster(
    gateway_factory: GatewayFactory,
    database: str,
    tmp_path: Path,
    names: tuple[str, ...],
    *,
    prefix: str,
    agents: list[dict[str, Any]] | None = None,
) -> Iterator[list[GatewayProcess]]:
    """Gateway processes ``names`` on one Redis (unique ``prefix``, db 5) and one
    ``database``, with ``agents`` (or the default config); stopped and their keys deleted
    after."""
    require_redis()
    prefix = f"{prefix}-{uuid.uuid4().hex[:12]}"
    env = {
        "REDIS_URL": E2E_REDIS_URL,
        "WINGMAN_CHANNEL_PREFIX": f"{prefix}-ch",
        "WINGMAN_CACHE_PREFIX": f"{prefix}-cache",
        "DATABASE_URL": database,
        # runs execute in the gateway that accepted them (the Celery executor has its own
        # cluster tests: tests/agents/test_e2e_scaled.py)
        "WINGMAN_RUN_EXECUTOR": "local",
    }
    gateways = []
    try:
        for name in names:  # one after the other (the first one would migrate)
            if agents is not None:
                write_agents_config(tmp_path / name, agents)
            gateways.append(gateway_factory(env, name=name, state_dir=tmp_path / name))
        yield gateways
    finally:
        for gw in gateways:
            gw.stop()
        delete_redis_prefix(prefix, E2E_REDIS_URL)


@pytest.fixture
def cluster(gateway_factory: GatewayFactory, shared_database: str, tmp_path: Path):
    """Two gateway processes on one Redis and one database (:func:`local_cluster`); the
    default agent ``main`` uses the slow offline model so a run can be cancelled."""
    agents = [{"id": "main", "default": True, "model": "wingman:slow"}]
    yield from local_cluster(
        gateway_factory,
        shared_database,
        tmp_path,
        ("node1", "node2"),
        prefix="wme2e",
        agents=agents,
    )


@pytest.mark.redis
@pytest.mark.postgres
async def test_subscriber_on_another_process_sees_the_run_and_cancels_it(cluster) -> None:
    gw1, gw2 = cluster
    assert gw1.port != gw2.port
    async with connected(gw1, name="runner@1") as a, connected(gw2, name="watcher@2") as b:
        # the main session exists once it had a run
        _, warm, _ = await run_agent(a, {"message": "warm up"})
        assert warm["status"] == "ok"
        sub = await b.ok("sessions.subscribe", {"sessionKey": "agent:main:main"})
        assert sub == {"sessionKey": "agent:main:main", "subscribed": True}

        # a run on process 1: the subscriber on process 2 sees it all
        ack, final, events = await run_agent(a, {"message": "across processes"})
        assert final["status"] == "ok"
        check_events(events, run_id=ack["runId"], terminal="agent-complete")
        seen = await events_until_terminal(b, ack["runId"])
        assert seen == events, "process 2 must see exactly process 1's run events"
        note = await b.next_event(
            "session.message",
            where=lambda f: f["payload"]["message"]["runId"] == ack["runId"],
        )
        assert note["payload"] == {
            "sessionKey": "agent:main:main",
            "message": {"role": "user", "content": "across processes", "runId": ack["runId"]},
        }
        assert not [f for f in a.received if f.get("event") == "session.message"]

        # a slow run on process 1, cancelled from process 2
        frame = a.request_frame("agent", {"message": "/stream 200"})
        await a.send(frame)
        slow = (await a.response(frame["id"]))["payload"]
        await b.next_event(
            "agent",
            where=lambda f: (
                f["payload"].get("runId") == slow["runId"]
                and f["payload"]["type"] == "agent-stream"
            ),
            timeout=RUN_TIMEOUT,
        )
        cancel = await b.ok("agent.cancel", {"runId": slow["runId"]})
        assert cancel["cancelled"] is True and cancel["runId"] == slow["runId"]
        slow_final = await a.response(frame["id"], timeout=RUN_TIMEOUT)
        assert slow_final["payload"]["status"] == "cancelled", slow_final
        on_a = agent_events(a.backlog, slow["runId"])
        check_events(on_a, run_id=slow["runId"], terminal="agent-cancelled")
        on_b = await events_until_terminal(b, slow["runId"])
        assert on_b[-1]["type"] == "agent-cancelled"
        assert sum(1 for e in on_b if e["type"] in TERMINAL) == 1
        assert len("".join(e.get("text", "") for e in on_a)) < len(
            "".join(f"t{i} " for i in range(200))
        )

        # both processes read the same history; the run is settled as cancelled
        waited = await b.ok("agent.wait", {"runId": slow["runId"], "timeoutMs": 5000})
        assert waited["status"] == "cancelled"
        h1 = await a.ok("chat.history", {"sessionKey": "agent:main:main"})
        h2 = await b.ok("chat.history", {"sessionKey": "agent:main:main"})
        assert h1 == h2
        assert [m["content"] for m in h1["messages"] if m["role"] == "user"] == [
            "warm up",
            "across processes",
            "/stream 200",
        ]


@pytest.mark.redis
@pytest.mark.postgres
def test_an_event_stream_on_another_process_gets_the_run_from_its_start(cluster) -> None:
    """A run started on process 1, followed from process 2 halfway through: its replay comes
    from process 1 (through Redis), then the live events, with no gap and no duplicate."""
    gw1, gw2 = cluster
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        httpx.Client(base_url=gw1.http_url, headers=auth, timeout=15) as api1,
        httpx.Client(base_url=gw2.http_url, headers=auth, timeout=15) as api2,
    ):
        run_id = api1.post("/api/runs", json={"message": "/stream 40"}).json()["runId"]
        with api1.stream("GET", f"/api/runs/{run_id}/events") as stream:
            here = []
            for _, data in sse_events(stream):
                here.append(data)
                if sum(bool(e.get("text")) for e in here) == 10:
                    with api2.stream("GET", f"/api/runs/{run_id}/events") as elsewhere:
                        there = [data for _, data in sse_events(elsewhere)]
    full = "".join(f"t{i} " for i in range(40))
    assert there[0]["type"] == "agent-start" and there[0]["seq"] == 1
    replayed = there[1]
    assert replayed["replay"] is True and replayed["text"].startswith("t0 t1 t2 t3 t4 ")
    assert there[2:] == [e for e in here if e["seq"] > replayed["seq"]]
    assert "".join(e.get("text", "") for e in there if e["type"] == "agent-stream") == full
    assert there[-1]["type"] == "agent-complete" and there[-1]["result"]["text"] == full
    assert "no replay of run" not in gw2.log(), gw2.log_tail()


async def test_slow_consumer_is_closed_4008_and_the_run_is_not_held_up(
    gateway_factory, each_server
) -> None:
    """A subscriber that stops reading while a run streams to it, on both ASGI servers: the
    run finishes for its requester, and the reader is closed 4008 once ``maxBufferedBytes``
    are unread (the gateway did not buffer without bound); reading again, it gets what was
    buffered and then the close frame."""
    gw = gateway_factory(
        {"WINGMAN_MAX_BUFFERED_BYTES": "65536", "WINGMAN_ASGI_SERVER": each_server}
    )
    assert f"ASGI server: {each_server}" in gw.log(), gw.log_tail()
    async with connected(gw, name="requester") as fast:
        _, warm, _ = await run_agent(fast, {"message": "the session exists after a run"})
        assert warm["status"] == "ok"

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", gw.port))
        # max_queue: the client library stops reading the socket when 4 frames wait unread
        async with websockets.connect(
            gw.url, sock=sock, max_size=None, max_queue=4, ping_interval=None
        ) as slow:
            assert json.loads(await slow.recv())["event"] == "connect.challenge"
            hello = {"type": "req", "id": "c", "method": "connect", "params": connect_params()}
            await slow.send(json.dumps(hello))
            assert json.loads(await slow.recv())["ok"] is True
            sub = {"type": "req", "id": "s", "method": "sessions.subscribe"}
            await slow.send(json.dumps({**sub, "params": {"sessionKey": "agent:main:main"}}))
            while (reply := json.loads(await slow.recv())).get("id") != "s":
                pass
            assert reply["ok"] is True, reply

            run = asyncio.create_task(run_agent(fast, {"message": "/stream 20000"}))

            async def closed_slow_consumer() -> bool:
                return run.done() or "closing slow consumer" in gw.log()

            await wait_until(closed_slow_consumer, timeout=RUN_TIMEOUT, what="4008 logged")
            # Read again at once (daphne drops a peer that leaves its close unanswered 1 s).
            frames, closed = 0, None
            while closed is None:
                try:
                    await asyncio.wait_for(slow.recv(), timeout=5)
                    frames += 1
                except websockets.ConnectionClosed as exc:
                    closed = exc
                except TimeoutError:
                    pytest.fail(f"still open after {frames} frames and 5 s of silence")
            _, final, events = await run
            assert final["status"] == "ok" and events[-1]["type"] == "agent-complete"
    assert closed.rcvd is not None, f"no close frame after {frames} frames"
    assert closed.rcvd.code == 4008, closed
    assert 0 < frames < 20000, frames
    assert "closing slow consumer" in gw.log(), gw.log_tail()
