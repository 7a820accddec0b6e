"""A raw HTTP bridge client for tests: sends frames, polls by cursor, reads SSE, with every
frame kept so a test can check order, ids and duplicates."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.gateway.gateway_process import TOKEN

TIMEOUT = 15.0


def dialect_frames(dialect: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the handshake frame, a call) of each dialect, with the gateway's token."""
    if dialect == "canonical":
        hello = {
            "type": "req",
            "id": "c1",
            "method": "connect",
            "params": {
                "minProtocol": 3,
                "maxProtocol": 4,
                "client": {"id": "bridge-test", "version": "1", "mode": "cli", "instanceId": "b-1"},
                "auth": {"token": TOKEN},
            },
        }
        return hello, {"type": "req", "id": "h1", "method": "health", "params": {}}
    if dialect == "jsonrpc":
        hello = {"jsonrpc": "2.0", "id": 1, "method": "auth", "params": {"token": TOKEN}}
        return hello, {"jsonrpc": "2.0", "id": 2, "method": "health", "params": {}}
    hello = {
        "type": "connect",
        "id": "conn-1",
        "client": {"instanceId": "b-2", "clientType": "cli"},
        "auth": {"token": TOKEN},
        "timestamp": 1,
    }
    return hello, {"type": "req:agent", "id": "s1", "payload": {"agentId": "main", "content": "hi"}}


class Bridge:
    """One bridge session over a shared httpx client."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.session: str | None = None
        self.cursor = 0
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.closed: int | None = None
        self._checked = 0  # frames ``until`` looked at

    async def send(self, frames: Any, **params: Any) -> dict[str, Any]:
        headers = {"x-wingman-session": self.session} if self.session else {}
        body = frames if isinstance(frames, str) else json.dumps(frames)
        r = await self.http.post(
            f"{self.base}/bridge/send", content=body, headers=headers, params=params
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        self.session = answer["session"]
        return answer

    async def poll_raw(self, cursor: int, timeout_ms: int = 2000) -> httpx.Response:
        return await self.http.get(
            f"{self.base}/bridge/poll",
            params={"session": self.session, "cursor": cursor, "timeout": timeout_ms},
            timeout=TIMEOUT + timeout_ms / 1000,
        )

    async def poll(self, timeout_ms: int = 2000) -> list[dict[str, Any]]:
        r = await self.poll_raw(self.cursor, timeout_ms)
        assert r.status_code == 200, r.text
        answer = r.json()
        got = [(f["id"], f["frame"]) for f in answer["frames"]]
        self.frames += got
        self.cursor = answer["cursor"]
        self.closed = answer["closed"]
        return [frame for _, frame in got]

    async def until(self, pred, *, rounds: int = 40) -> dict[str, Any]:
        """Poll until a frame matches ``pred`` (bounded)."""
        for _ in range(rounds):
            while self._checked < len(self.frames):
                frame = self.frames[self._checked][1]
                self._checked += 1
                if pred(frame):
                    return frame
            if self.closed is not None:
                break
            await self.poll()
        raise AssertionError(f"no matching frame; got {[f for _, f in self.frames]}")


async def sse_frames(
    http: httpx.AsyncClient,
    base: str,
    session: str,
    *,
    count: int,
    last_event_id: int | None = None,
    pred=None,
):
    """Read SSE events until ``count`` frames arrived (or one matches ``pred``):
    [(id, frame)] and the ``close`` event's data if the stream ended with one."""
    headers = {"last-event-id": str(last_event_id)} if last_event_id is not None else {}
    got: list[tuple[int, dict[str, Any]]] = []
    event: dict[str, str] = {}
    async with http.stream(
        "GET", f"{base}/bridge/sse", params={"session": session}, headers=headers, timeout=TIMEOUT
    ) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                event[key] = event.get(key, "") + value
                continue
            if event.get("event") == "close":
                return got, json.loads(event["data"])
            if "data" in event:
                frame = json.loads(event["data"])
                got.append((int(event["id"]), frame))
                if len(got) >= count or (pred is not None and pred(frame)):
                    return got, None
            event = {}
    return got, None
