"""The HTTP bridge end to end on a real gateway process: every dialect over send/poll and
SSE, an agent run streamed both ways, cursor redelivery without duplicates, Last-Event-ID
resume, the queue bound, idle expiry with presence removed, CORS."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.bridge.helpers import Bridge, dialect_frames, sse_frames
from tests.gateway.gateway_process import GatewayFactory, GatewayProcess, connected

pytestmark = pytest.mark.e2e

DIALECTS = ("canonical", "jsonrpc", "wingman_client")


@pytest.fixture
def gateway(shared_gateway: GatewayProcess) -> GatewayProcess:
    """One gateway for this module's tests on the default configuration: each opens its own
    bridge sessions and changes nothing the others see."""
    return shared_gateway


def reply_to(frame: dict[str, Any], rid: Any) -> bool:
    return frame.get("id") == rid and frame.get("type") != "event"


def check_reply(dialect: str, frame: dict[str, Any]) -> None:
    if dialect == "canonical":
        assert frame["type"] == "res" and frame["ok"] is True, frame
    elif dialect == "jsonrpc":
        assert "result" in frame and "error" not in frame, frame
    else:
        assert frame["type"] in ("res", "ack") and frame.get("ok", True) is True, frame


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_every_dialect_over_send_and_poll(gateway: GatewayProcess, dialect: str) -> None:
    hello, call = dialect_frames(dialect)
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        answer = await b.send(hello)
        assert answer["accepted"] == 1 and answer["closed"] is None, answer
        first = await b.poll()
        assert first[0]["event"] == "connect.challenge", first
        ok = await b.until(lambda f: reply_to(f, hello["id"]))
        check_reply(dialect, ok)
        if dialect == "canonical":
            assert ok["payload"]["type"] == "hello-ok", ok
        await b.send(call)
        check_reply(dialect, await b.until(lambda f: reply_to(f, call["id"])))
        ids = [fid for fid, _ in b.frames]
        assert ids == list(range(1, len(ids) + 1)), ids


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_every_dialect_over_sse_with_a_batch(gateway: GatewayProcess, dialect: str) -> None:
    hello, call = dialect_frames(dialect)
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        answer = await b.send([hello, call])  # a batch: processed in order
        assert answer["accepted"] == 2, answer
        got, closed = await sse_frames(
            http, gateway.http_url, b.session, count=99, pred=lambda f: reply_to(f, call["id"])
        )
        assert closed is None
        frames = [f for _, f in got]
        assert frames[0]["event"] == "connect.challenge"
        check_reply(dialect, next(f for f in frames if reply_to(f, hello["id"])))
        check_reply(dialect, frames[-1])
        assert [fid for fid, _ in got] == list(range(1, len(got) + 1))


def agent_frame(text: str) -> dict[str, Any]:
    params = {"agentId": "main", "message": text, "idempotencyKey": str(uuid.uuid4())}
    return {"type": "req", "id": "run1", "method": "agent", "params": params}


def check_run(frames: list[dict[str, Any]], text: str) -> None:
    replies = [f for f in frames if f.get("type") == "res" and f.get("id") == "run1"]
    assert len(replies) == 2, replies
    ack, final = replies
    run_id = ack["payload"]["runId"]
    assert final["payload"]["result"]["text"] == f"You said: {text}", final
    events = [
        f["payload"]
        for f in frames
        if f.get("event") == "agent" and f["payload"].get("runId") == run_id
    ]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
    ends = [
        e["type"] for e in events if e["type"].startswith("agent-") and e["type"] != "agent-start"
    ]
    assert ends[-1:] == ["agent-complete"] and ends.count("agent-complete") == 1, ends
    assert "".join(e.get("text", "") for e in events) == f"You said: {text}"


async def test_agent_run_streams_over_poll(gateway: GatewayProcess) -> None:
    hello, _ = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send([hello, agent_frame("over poll")])
        seen = 0

        def final(f: dict[str, Any]) -> bool:
            nonlocal seen
            seen += reply_to(f, "run1")
            return seen == 2

        await b.until(final)
        check_run([f for _, f in b.frames], "over poll")


async def test_agent_run_streams_over_sse(gateway: GatewayProcess) -> None:
    hello, _ = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send(hello)
        reader = asyncio.create_task(
            sse_frames(
                http,
                gateway.http_url,
                b.session,
                count=999,
                pred=lambda f: reply_to(f, "run1") and "result" in (f.get("payload") or {}),
            )
        )
        await asyncio.sleep(0.2)  # the stream is open before the run starts
        await b.send(agent_frame("over sse"))
        got, _ = await asyncio.wait_for(reader, 20)
        check_run([f for _, f in got], "over sse")


async def test_lost_poll_response_is_redelivered_never_duplicated(gateway: GatewayProcess) -> None:
    hello, call = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send([hello, call])
        await b.until(lambda f: reply_to(f, "h1"))
        for _ in range(10):  # until quiet (the presence event of our own connect may follow)
            if not await b.poll(timeout_ms=300):
                break
        last = b.cursor
        assert [fid for fid, _ in b.frames] == list(range(1, last + 1))
        await b.send({"type": "req", "id": "h2", "method": "health", "params": {}})
        first = (await b.poll_raw(last)).json()
        assert [f["id"] for f in first["frames"]] == [last + 1], first
        assert first["frames"][0]["frame"]["id"] == "h2"
        # that response was "lost": the same poll again returns the same frame
        again = (await b.poll_raw(last)).json()
        assert again["frames"] == first["frames"] and again["cursor"] == last + 1, again
        # acknowledged by the next cursor: never again, not even to a stale cursor
        empty = (await b.poll_raw(last + 1, timeout_ms=300)).json()
        assert empty["frames"] == [] and empty["cursor"] == last + 1, empty
        stale = (await b.poll_raw(0, timeout_ms=300)).json()
        assert stale["frames"] == [], stale
        stale = (await b.poll_raw(last, timeout_ms=300)).json()
        assert stale["frames"] == [], stale


async def test_sse_resumes_after_last_event_id(gateway: GatewayProcess) -> None:
    hello, call = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send([hello, call])
        first, _ = await sse_frames(http, gateway.http_url, b.session, count=1)
        assert [fid for fid, _ in first] == [1]
        # the stream broke after event 1: a reconnect resumes right after it
        rest, _ = await sse_frames(
            http,
            gateway.http_url,
            b.session,
            count=99,
            last_event_id=1,
            pred=lambda f: reply_to(f, "h1"),
        )
        assert [fid for fid, _ in rest] == list(range(2, len(rest) + 2)), rest
        assert rest[-1][1]["id"] == "h1"
        h1 = rest[-1][0]
        tail, _ = await sse_frames(http, gateway.http_url, b.session, count=1, last_event_id=h1 - 1)
        assert tail[0] == rest[-1], tail


async def test_queue_is_bounded_slow_consumer_closed(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory({"WINGMAN_MAX_BUFFERED_BYTES": "1024"})
    hello, _ = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send([hello, agent_frame("a reply long enough " * 30)])
        await asyncio.sleep(2.0)  # the client reads nothing while the run streams
        r = await b.poll_raw(0, timeout_ms=0)
        answer = r.json()
        assert answer["closed"] == 4008, answer
        size = sum(len(json.dumps(f["frame"])) for f in answer["frames"])
        assert size < 1024 + 4096, size  # bounded, not the whole run
        await asyncio.sleep(6.0)  # the slow consumer's session is dropped after 5 s
        assert (await b.poll_raw(0)).status_code == 404


async def test_idle_session_expires_and_leaves_presence(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory({"WINGMAN_BRIDGE_IDLE_MS": "1000"})
    hello, _ = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send(hello)
        await b.until(lambda f: reply_to(f, "c1"))
        async with connected(gateway) as c:
            ids = {e.get("instanceId") for e in c.hello["snapshot"]["presence"]}
            assert "b-1" in ids, ids
        await asyncio.sleep(3.0)
        r = await b.poll_raw(b.cursor)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", r.text
        async with connected(gateway) as c:
            ids = {e.get("instanceId") for e in c.hello["snapshot"]["presence"]}
            assert "b-1" not in ids, ids


async def test_cors_preflight_and_origins(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    state = tmp_path / "cors"
    state.mkdir()
    config = {"gateway": {"bridge": {"corsOrigins": ["http://app.example:8080"]}}}
    (state / "wingman.config.json").write_text(json.dumps(config))
    gateway = gateway_factory(state_dir=state)
    allowed = {
        "origin": "http://app.example:8080",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, x-wingman-session",
    }
    async with httpx.AsyncClient() as http:
        url = f"{gateway.http_url}/bridge/send"
        pre = await http.options(url, headers=allowed)
        assert pre.status_code == 204, pre.text
        assert pre.headers["access-control-allow-origin"] == "http://app.example:8080"
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert "x-wingman-session" in pre.headers["access-control-allow-headers"]
        denied = await http.options(url, headers={**allowed, "origin": "http://evil.example"})
        assert denied.status_code == 403
        assert "access-control-allow-origin" not in denied.headers
        hello, _ = dialect_frames("canonical")
        r = await http.post(url, json=hello, headers={"origin": "http://app.example:8080"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://app.example:8080"
        assert r.headers["access-control-expose-headers"] == "x-wingman-session"


async def test_bad_requests_change_nothing(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient() as http:
        base = gateway.http_url
        assert (
            await http.get(f"{base}/bridge/poll", params={"session": "nope"})
        ).status_code == 404
        assert (await http.get(f"{base}/bridge/poll")).status_code == 400
        assert (await http.get(f"{base}/bridge/send")).status_code == 405
        r = await http.post(f"{base}/bridge/send", content="[not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
        b = Bridge(http, base)
        await b.send([])  # an empty batch opens a session: its challenge waits
        assert (await b.poll())[0]["event"] == "connect.challenge"
        r = await http.get(f"{base}/bridge/poll", params={"session": b.session, "cursor": "x"})
        assert r.status_code == 400
        # a first frame of no dialect closes the session like a WebSocket (1008)
        await b.send({"hello": 1})
        await b.poll(timeout_ms=300)
        assert b.closed == 1008


async def test_poll_and_sse_on_each_server(gateway_factory: GatewayFactory, each_server) -> None:
    gateway = gateway_factory({"WINGMAN_ASGI_SERVER": each_server})
    hello, call = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, gateway.http_url)
        await b.send(hello)
        check_reply("canonical", await b.until(lambda f: reply_to(f, "c1")))
        reader = asyncio.create_task(
            sse_frames(
                http,
                gateway.http_url,
                b.session,
                count=99,
                last_event_id=b.cursor,
                pred=lambda f: reply_to(f, "h1"),
            )
        )
        await asyncio.sleep(0.2)
        await b.send(call)
        got, _ = await asyncio.wait_for(reader, 15)
        assert got[0][0] == b.cursor + 1 and got[-1][1]["id"] == "h1", got
