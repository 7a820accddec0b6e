"""When the bridge delivers, on a real gateway process: a frame queued while no poll waits
is returned by the next poll at once, a waiting poll is answered as soon as a frame comes
(the rest follow with the next poll, never twice), and an SSE stream writes each frame as it is queued
(a reply, an event fanned out from another connection) without waiting for more, to every
stream open on the session."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.bridge.helpers import Bridge, dialect_frames, sse_events
from tests.gateway.gateway_process import GatewayProcess, connected, presence_has

pytestmark = pytest.mark.e2e

#: Far below the poll timeout and the SSE keepalive (15 s): "at once", on a busy machine.
PROMPT = 3.0


async def _handshaken(http: httpx.AsyncClient, gateway: GatewayProcess) -> Bridge:
    hello, _ = dialect_frames("canonical")
    b = Bridge(http, gateway.http_url)
    await b.send(hello)
    await b.until(lambda f: f.get("id") == "c1")
    return b


def _health(rid: str) -> dict[str, Any]:
    return {"type": "req", "id": rid, "method": "health", "params": {}}


async def test_frame_queued_between_polls_comes_with_the_next_poll_at_once(
    gateway: GatewayProcess,
) -> None:
    async with httpx.AsyncClient() as http:
        b = await _handshaken(http, gateway)
        await b.send(_health("h1"))  # no poll is waiting: the reply is queued
        started = time.monotonic()
        frames = await b.poll(timeout_ms=20_000)
        assert time.monotonic() - started < PROMPT
        assert [f["id"] for f in frames if f.get("type") == "res"] == ["h1"], frames
        started = time.monotonic()
        assert await b.poll(timeout_ms=300) == []  # acked: not returned twice
        assert time.monotonic() - started >= 0.25


async def test_waiting_poll_is_answered_when_a_frame_comes(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient() as http:
        b = await _handshaken(http, gateway)
        instance = str(uuid.uuid4())
        waiting = asyncio.create_task(b.poll(timeout_ms=20_000))
        await asyncio.sleep(0.3)  # the poll waits on the gateway
        assert not waiting.done()
        async with connected(gateway, instance_id=instance):
            frames = await asyncio.wait_for(waiting, PROMPT)
            joined = [f for f in frames if f.get("event") == "presence"]
            assert joined and presence_has(joined[0], reason="connect", instance_id=instance)
        await b.until(lambda f: presence_has(f, reason="disconnect", instance_id=instance))
        ids = [fid for fid, _ in b.frames]
        assert ids == list(range(1, len(ids) + 1)), ids  # in order, none twice


async def _next(events, pred) -> tuple[int, dict[str, Any]]:
    """The next frame of the stream matching ``pred`` (within PROMPT seconds)."""
    async with asyncio.timeout(PROMPT):
        async for fid, frame in events:
            assert fid is not None, frame  # the stream must not end
            if pred(frame):
                return fid, frame
    raise AssertionError("the stream ended")


async def test_sse_writes_each_frame_when_it_is_queued(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient() as http:
        b = await _handshaken(http, gateway)
        first = sse_events(http, gateway.http_url, b.session, last_event_id=b.cursor)
        second = sse_events(http, gateway.http_url, b.session, last_event_id=b.cursor)
        try:
            for i in range(3):  # one reply at a time, each before the next is asked for
                await b.send(_health(f"h{i}"))
                reply = await _next(first, lambda f, rid=f"h{i}": f.get("id") == rid)
                assert reply == await _next(second, lambda f, rid=f"h{i}": f.get("id") == rid)
            # an event fanned out by the hub (another client's presence) reaches both
            instance = str(uuid.uuid4())

            def joined(f: dict[str, Any]) -> bool:
                return f.get("event") == "presence" and presence_has(
                    f, reason="connect", instance_id=instance
                )

            async with connected(gateway, instance_id=instance):
                assert await _next(first, joined) == await _next(second, joined)
        finally:
            await first.aclose()
            await second.aclose()
