"""The bridge behind a load balancer without sticky sessions: two gateway processes on Redis
and one PostgreSQL database (and a Celery worker executing runs, tests/agents/test_e2e_scaled.py);
a client's requests alternate between them and it still gets every frame once, in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.agents.test_e2e_agents import shared_database  # noqa: F401 - a fixture
from tests.agents.test_e2e_scaled import Scaled, scaled  # noqa: F401 - a fixture
from tests.gateway.bridge.helpers import Bridge, dialect_frames, sse_frames
from tests.gateway.gateway_process import connected

pytestmark = pytest.mark.e2e


class RoundRobin(Bridge):
    """A bridge client whose every request goes to the next gateway in turn."""

    def __init__(self, http: httpx.AsyncClient, bases: list[str]) -> None:
        super().__init__(http, bases[0])
        self.bases = bases
        self.turn = 0

    def _next(self) -> None:
        self.turn += 1
        self.base = self.bases[self.turn % len(self.bases)]

    async def send(self, frames: Any, **params: Any) -> dict[str, Any]:
        self._next()
        return await super().send(frames, **params)

    async def poll_raw(self, cursor: int, timeout_ms: int = 2000) -> httpx.Response:
        self._next()
        return await super().poll_raw(cursor, timeout_ms)


async def test_requests_alternating_between_processes_lose_and_repeat_nothing(
    scaled: Scaled,  # noqa: F811
) -> None:
    hello, call = dialect_frames("canonical")
    text = "no sticky sessions"
    params = {"agentId": "main", "message": text, "idempotencyKey": str(uuid.uuid4())}
    run = {"type": "req", "id": "run1", "method": "agent", "params": params}
    async with httpx.AsyncClient() as http:
        b = RoundRobin(http, [scaled.a.http_url, scaled.b.http_url])
        await b.send(hello)  # goes to B: the session lives there
        await b.until(lambda f: f.get("id") == "c1")
        await b.send(call)  # A forwards it to B
        await b.until(lambda f: f.get("id") == "h1")
        async with connected(scaled.a) as watcher:  # presence crosses processes too
            ids = {e.get("instanceId") for e in watcher.hello["snapshot"]["presence"]}
            assert "b-1" in ids, ids
        await b.send(run)
        replies: list[dict[str, Any]] = []

        def final(f: dict[str, Any]) -> bool:
            if f.get("id") == "run1" and f.get("type") == "res":
                replies.append(f)
            return len(replies) == 2

        await b.until(final, rounds=80)
        assert replies[1]["payload"]["result"]["text"].endswith(text), replies[1]
        ids = [fid for fid, _ in b.frames]
        assert ids == list(range(1, len(ids) + 1)), ids  # every frame once, in order
        frames = [f for _, f in b.frames]
        events = [
            f["payload"]
            for f in frames
            if f.get("event") == "agent"
            and f["payload"].get("runId") == replies[0]["payload"]["runId"]
        ]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert [e["type"] for e in events].count("agent-complete") == 1

        # the last poll response lost, asked again (on the other process): the same frame
        again = (await b.poll_raw(ids[-2], timeout_ms=0)).json()
        assert [(f["id"], f["frame"]) for f in again["frames"]] == b.frames[-1:], again


async def test_sse_on_the_other_process_resumes_after_last_event_id(
    scaled: Scaled,  # noqa: F811
) -> None:
    hello, call = dialect_frames("canonical")
    async with httpx.AsyncClient() as http:
        b = Bridge(http, scaled.a.http_url)
        await b.send([hello, call])  # the session lives on A
        got, _ = await sse_frames(http, scaled.b.http_url, b.session, count=1)
        assert [fid for fid, _ in got] == [1]
        rest, _ = await sse_frames(
            http,
            scaled.b.http_url,
            b.session,
            count=99,
            last_event_id=1,
            pred=lambda f: f.get("id") == "h1",
        )
        assert [fid for fid, _ in rest] == list(range(2, len(rest) + 2)), rest
        assert rest[-1][1]["id"] == "h1", rest
        seen = rest[-1][0]
        # a frame queued while the stream on B is open reaches it
        reader = asyncio.create_task(
            sse_frames(
                http,
                scaled.b.http_url,
                b.session,
                count=9,
                last_event_id=seen,
                pred=lambda f: f.get("id") == "h2",
            )
        )
        await asyncio.sleep(0.3)
        await b.send({"type": "req", "id": "h2", "method": "health", "params": {}})
        tail, _ = await asyncio.wait_for(reader, 15)
        assert tail[-1][1]["id"] == "h2" and tail[0][0] == seen + 1, tail
