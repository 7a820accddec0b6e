"""End to end over HTTP: runs started through ``POST /api/runs`` on the real gateway process
execute on the server's event loop (after the 202 went out), stream as Server-Sent Events,
are idempotent and can be cancelled; ``/api/health`` and ``/api/stats`` match ``/health``
and ``/stats``."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.agents.conftest import TERMINAL_TYPES, check_run_events
from tests.gateway.gateway_process import TOKEN, GatewayProcess

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT = httpx.Timeout(15.0)


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.http_url, headers=AUTH, timeout=TIMEOUT) as client:
        yield client


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` for each Server-Sent Event; checks the frame format."""
    name: str | None = None
    event_id: str | None = None
    for line in response.iter_lines():
        if line.startswith(":"):
            continue  # keepalive comment
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("id: "):
            event_id = line[len("id: ") :]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
            assert name == data["type"], (name, data)
            if event_id is not None:
                assert int(event_id) == data["seq"]
            yield name, data
        else:
            assert line == "", f"not an SSE line: {line!r}"
            name = event_id = None


def wait_finished(api: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60  # a bound, not a speed claim: loaded CI machines
    while time.monotonic() < deadline:
        run = api.get(f"/api/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def test_health_and_stats_have_the_shapes_of_the_gateway_endpoints(gateway, api):
    health = httpx.get(f"{gateway.http_url}/api/health", timeout=TIMEOUT)  # public
    assert health.status_code == 200
    plain = httpx.get(f"{gateway.http_url}/health", timeout=TIMEOUT).json()
    assert health.json().keys() == plain.keys()
    assert health.json()["stats"].keys() == plain["stats"].keys()
    assert health.json()["status"] == "healthy"

    stats = api.get("/api/stats")
    assert stats.status_code == 200
    plain_stats = httpx.get(f"{gateway.http_url}/stats", headers=AUTH, timeout=TIMEOUT).json()
    assert stats.json().keys() == plain_stats.keys() == {"gateway", "nodes", "groups"}
    assert stats.json()["gateway"].keys() == plain_stats["gateway"].keys()
    refused = httpx.get(f"{gateway.http_url}/api/stats", timeout=TIMEOUT)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_run_streams_its_events_and_a_retry_returns_the_same_run(api):
    # A slow run holds the session; the second run queues behind it, so its stream is
    # followed from before its start: agent-start, the chunks, one terminal event.
    assert api.patch("/api/agents/main", json={"model": "wingman:slow"}).status_code == 200
    first = api.post("/api/runs", json={"message": "/stream 8"})
    assert first.status_code == 202, first.text
    second = api.post(
        "/api/runs", json={"message": "/stream 3"}, headers={"Idempotency-Key": "k-1"}
    )
    assert second.status_code == 202, second.text
    accepted = second.json()
    assert accepted["queuePosition"] == 1 and accepted["duplicate"] is False
    assert accepted["sessionKey"] == "agent:main:main" and accepted["status"] == "queued"
    run_id = accepted["runId"]
    assert second.headers["Location"].endswith(f"/api/runs/{run_id}")

    with api.stream("GET", f"/api/runs/{run_id}/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [data for _, data in sse_events(stream)]
    check_run_events(events, run_id=run_id, session_key="agent:main:main", agent_id="main")
    chunks = [e.get("text") for e in events if e["type"] == "agent-stream"]
    assert [c for c in chunks if c] == ["t0 ", "t1 ", "t2 "]
    assert events[-1]["type"] == "agent-complete"

    run = api.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "ok" and run["result"] == "t0 t1 t2 " and run["source"] == "api"

    # The same key again (header or field): the same run, no second one.
    for retry in (
        api.post("/api/runs", json={"message": "/stream 3"}, headers={"Idempotency-Key": "k-1"}),
        api.post("/api/runs", json={"message": "/stream 3", "idempotencyKey": "k-1"}),
    ):
        assert retry.status_code == 202
        assert retry.json()["runId"] == run_id and retry.json()["duplicate"] is True
        assert retry.json()["status"] == "ok"
    listed = api.get("/api/runs", params={"session": "agent:main:main"}).json()
    assert listed["count"] == 2

    # A finished run: its terminal event from the database, then the stream ends.
    first_id = first.json()["runId"]
    with api.stream("GET", f"/api/runs/{first_id}/events") as stream:
        replay = list(sse_events(stream))
    assert [name for name, _ in replay] == ["agent-complete"]
    assert replay[0][1]["result"]["text"] == wait_finished(api, first_id)["result"]
    assert replay[0][1]["runId"] == first_id

    messages = api.get("/api/sessions/agent:main:main/messages").json()["results"]
    assert [m["role"] for m in messages] == ["user", "user", "assistant", "assistant"]


def test_cancel_a_slow_run_keeps_the_partial_answer(api):
    made = api.post("/api/agents", json={"id": "slowpoke", "model": "wingman:slow"})
    assert made.status_code == 201, made.text
    started = api.post("/api/runs", json={"message": "/stream 200", "agentId": "slowpoke"})
    assert started.status_code == 202
    run_id = started.json()["runId"]
    key = started.json()["sessionKey"]

    events = []
    cancel = None
    with api.stream("GET", f"/api/runs/{run_id}/events") as stream:
        for _, data in sse_events(stream):
            events.append(data)
            chunks = sum(bool(e.get("text")) for e in events)
            if chunks == 3 and cancel is None:
                cancel = api.post(f"/api/runs/{run_id}/cancel")
    assert cancel is not None and cancel.status_code == 200
    assert cancel.json() == {"runId": run_id, "cancelled": True}
    terminal = events[-1]
    assert terminal["type"] == "agent-cancelled"
    assert [e["type"] for e in events].count("agent-cancelled") == 1
    partial = "".join(e.get("text", "") for e in events if e["type"] == "agent-stream")
    assert terminal["partialText"] == partial and partial.startswith("t0 t1 t2 ")
    assert len(partial.split()) < 200

    run = api.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "cancelled" and run["result"] == partial
    last = api.get(f"/api/sessions/{key}/messages").json()["results"][-1]
    assert last == {**last, "role": "assistant", "content": partial, "runId": run_id}

    again = api.post(f"/api/runs/{run_id}/cancel")
    assert again.status_code == 200 and again.json()["cancelled"] is False
    assert api.get("/api/runs", params={"status": "cancelled"}).json()["count"] == 1


def test_queue_false_on_a_busy_session_is_a_409(api):
    assert api.patch("/api/agents/main", json={"model": "wingman:slow"}).status_code == 200
    busy = api.post("/api/runs", json={"message": "/stream 40"})
    assert busy.status_code == 202
    refused = api.post("/api/runs", json={"message": "hi", "queue": False})
    assert refused.status_code == 409
    assert refused.json()["code"] == "CONFLICT" and "busy" in refused.json()["detail"]
    assert api.get("/api/runs").json()["count"] == 1
    api.post(f"/api/runs/{busy.json()['runId']}/cancel")


def test_api_docs_work_offline(api: httpx.Client) -> None:
    """/api/docs/ loads Swagger UI from the gateway's own static files (no CDN), and the
    schema it points at is served."""
    page = api.get("/api/docs/")
    assert page.status_code == 200, page.text[:300]
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)
    assert assets, page.text[:500]
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} is not served by the gateway"
        assert api.get(asset).status_code == 200, asset
    schema = api.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Wingman Gateway API"


def test_bad_bodies_are_json_errors_and_log_no_error(gateway_factory, each_server):
    """The real server (both ASGI servers): too deep, too big, a number for the message and
    an unknown path are JSON errors; none is an ERROR in the gateway log."""
    gateway = gateway_factory({"WINGMAN_ASGI_SERVER": each_server})
    with httpx.Client(base_url=gateway.http_url, headers=AUTH, timeout=TIMEOUT) as api:
        json_body = {"Content-Type": "application/json"}
        deep = api.post("/api/runs", content="[" * 100_000 + "]" * 100_000, headers=json_body)
        assert deep.status_code == 400, deep.text[:300]
        assert deep.json()["code"] == "parse_error"
        big = api.post("/api/runs", json={"message": "x" * 3_000_000})
        assert big.status_code == 413, big.text[:300]
        assert big.json() == {
            "detail": "request body over 2621440 bytes",
            "code": "PAYLOAD_TOO_LARGE",
        }
        number = api.post("/api/runs", json={"message": 123})
        assert number.status_code == 400 and "message" in number.json(), number.text
        missing = api.get("/api/nothing")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert api.get("/api/runs").json()["count"] == 0
    log = gateway.log()
    assert " ERROR " not in log and "Traceback" not in log, gateway.log_tail(60)


def test_a_follower_gets_the_run_from_its_start_whenever_it_connects(api):
    """One follower connects right after the POST, another when the run is halfway: both
    get agent-start, the whole text once, and the one terminal event."""
    assert api.patch("/api/agents/main", json={"model": "wingman:slow"}).status_code == 200
    run_id = api.post("/api/runs", json={"message": "/stream 40"}).json()["runId"]
    full = "".join(f"t{i} " for i in range(40))

    with api.stream("GET", f"/api/runs/{run_id}/events") as early_stream:
        early = []
        for _, data in sse_events(early_stream):
            early.append(data)
            if sum(bool(e.get("text")) for e in early) == 10:
                with api.stream("GET", f"/api/runs/{run_id}/events") as late_stream:
                    late = [data for _, data in sse_events(late_stream)]
    assert early[0]["type"] == "agent-start" and early[0]["seq"] == 1
    for events in (early, late):
        assert events[0]["type"] == "agent-start"
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs)), seqs
        assert "".join(e.get("text", "") for e in events if e["type"] == "agent-stream") == full
        assert events[-1]["type"] == "agent-complete" and events[-1]["result"]["text"] == full
        assert sum(e["type"] in TERMINAL_TYPES for e in events) == 1
    replayed = late[1]
    assert replayed["replay"] is True and replayed["text"].startswith("t0 t1 t2 ")
    assert late[2:] == [e for e in early if e["seq"] > replayed["seq"]]


def test_a_follower_that_stops_reading_is_cut_off(gateway_factory, each_server):
    """Like a slow WebSocket: past maxBufferedBytes unread its stream ends with an
    ``error`` event (SLOW_CONSUMER), on both servers, and the run is not held up."""
    gw = gateway_factory(
        {"WINGMAN_MAX_BUFFERED_BYTES": "65536", "WINGMAN_ASGI_SERVER": each_server}
    )
    assert f"ASGI server: {each_server}" in gw.log(), gw.log_tail()
    with httpx.Client(base_url=gw.http_url, headers=AUTH, timeout=TIMEOUT) as api:
        run_id = api.post("/api/runs", json={"message": "/stream 20000"}).json()["runId"]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        with sock:
            sock.connect(("127.0.0.1", gw.port))
            sock.sendall(
                f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 200"), head
            # It stops reading until the gateway has cut it off (or the run ended: not cut).
            deadline = time.monotonic() + 20
            while "ending the slow event stream" not in gw.log():
                assert time.monotonic() < deadline, "not cut off in 20 s"
                if api.get(f"/api/runs/{run_id}").json()["status"] == "ok":
                    break
                time.sleep(0.05)
            body = b""
            while not body.endswith(b"\r\n0\r\n\r\n"):
                data = sock.recv(1 << 16)
                assert data, f"closed before the end of the stream: {body[-300:]!r}"
                body += data
        assert wait_finished(api, run_id)["status"] == "ok"
    assert 0 < body.count(b"event: agent-stream") < 20000
    tail = body[body.rindex(b"event: ") :]
    assert tail.startswith(b"event: error\ndata: ") and b'"code":"SLOW_CONSUMER"' in tail, tail
    assert "ending the slow event stream" in gw.log(), gw.log_tail()
