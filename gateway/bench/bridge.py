"""``wingman gateway bench --mode bridge``: event delivery latency over ``/bridge/poll``,
``/bridge/sse`` and WebSocket, N clients of each connected to the same gateway at once.

As in the fan-out mode (measure.py), the event is the ``presence`` broadcast a fresh
*trigger* connection causes: each round opens one, and every client timestamps the first
frame carrying the trigger's instanceId. Latency runs from the moment the trigger sent its
``connect`` to that arrival, so the three transports are measured on the same events in the
same rounds. Arrivals are stamped when the bytes are read from the client's socket
(rawhttp.py, rawsocket.py), not when the client's coroutine gets to run: the bench's own
queue of hundreds of ready clients is not the gateway's latency. Targets: poll p99 < 100 ms,
SSE p99 within 2x WebSocket's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from gateway.bench.client import BenchError, Endpoint
from gateway.bench.measure import TRIGGER_GAP
from gateway.bench.rawhttp import RawHttp
from gateway.bench.rawsocket import RawSocket

TRANSPORTS = ("poll", "sse", "websocket")
#: Seconds between rounds: the fan-out bench's trigger gap (measure.py), more than twice the
#: presence coalescing window, so the previous trigger's disconnect has been published and
#: the next connect is published at once (with 0.3 s it waited up to ~0.1 s of the window:
#: the same delay on every transport, and not the transport's).
ROUND_GAP = TRIGGER_GAP
#: A round's event that has not reached a client after this long counts as missed.
ROUND_TIMEOUT = 10.0
POLL_TIMEOUT_MS = 25_000


@dataclass
class Bench:
    """Shared state of one run: the current round's marker and arrivals per transport."""

    endpoint: Endpoint
    watch: str | None = None
    sent_at: float = 0.0
    arrivals: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TRANSPORTS})
    latencies: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TRANSPORTS})
    missed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRANSPORTS, 0))
    seen: dict[str, set[int]] = field(default_factory=lambda: {t: set() for t in TRANSPORTS})

    def check(self, transport: str, client: int, text: str, arrived_ns: int) -> None:
        """A frame arrived (read from the socket at ``arrived_ns``): record it if it carries
        this round's marker (once per client)."""
        if self.watch is not None and self.watch in text and client not in self.seen[transport]:
            self.seen[transport].add(client)
            self.arrivals[transport].append(arrived_ns / 1e9)

    @property
    def http_base(self) -> str:
        return f"http://{self.endpoint.host}:{self.endpoint.port}"


def _connect_frame(endpoint: Endpoint, instance_id: str) -> dict[str, Any]:
    auth = {k: v for k, v in (("token", endpoint.token), ("password", endpoint.password)) if v}
    client = {"id": "bench", "version": "1", "mode": "cli", "instanceId": instance_id}
    params = {"minProtocol": 3, "maxProtocol": 4, "client": client, "auth": auth}
    return {"type": "req", "id": "c", "method": "connect", "params": params}


async def _open_session(http: httpx.AsyncClient, bench: Bench, n: int) -> tuple[str, int]:
    """A bridge session through its handshake: (session id, cursor after hello-ok)."""
    frame = _connect_frame(bench.endpoint, f"bench-bridge-{n}-{uuid.uuid4().hex[:6]}")
    r = await http.post(f"{bench.http_base}/bridge/send", json=frame)
    if r.status_code != 200:
        raise BenchError(f"bridge send: HTTP {r.status_code} {r.text[:200]}")
    session, cursor = r.json()["session"], 0
    for _ in range(20):
        answer = (await _poll(http, bench, session, cursor, 5000)).json()
        cursor = answer["cursor"]
        for item in answer["frames"]:
            if item["frame"].get("id") == "c":
                if not item["frame"].get("ok"):
                    raise BenchError(f"bridge handshake refused: {item['frame']}")
                return session, cursor
    raise BenchError("no hello-ok over the bridge")


async def _poll(http, bench: Bench, session: str, cursor: int, timeout_ms: int):
    params = {"session": session, "cursor": cursor, "timeout": timeout_ms}
    return await http.get(f"{bench.http_base}/bridge/poll", params=params)


async def poll_client(http: httpx.AsyncClient, bench: Bench, n: int, ready) -> None:
    session, cursor = await _open_session(http, bench, n)
    raw = await RawHttp.open(bench.endpoint.host, bench.endpoint.port)
    ready()
    try:
        while True:
            target = f"/bridge/poll?session={session}&cursor={cursor}&timeout={POLL_TIMEOUT_MS}"
            arrived, text = await raw.get(target)
            bench.check("poll", n, text, arrived)
            cursor = json.loads(text)["cursor"]
    finally:
        raw.close()


async def sse_client(http: httpx.AsyncClient, bench: Bench, n: int, ready) -> None:
    session, cursor = await _open_session(http, bench, n)
    raw = await RawHttp.open(bench.endpoint.host, bench.endpoint.port)
    events = raw.events(f"/bridge/sse?session={session}", f"Last-Event-ID: {cursor}\r\n")
    try:
        async for arrived, text in events:
            if ": ok" in text:
                ready()
            else:
                bench.check("sse", n, text, arrived)
    finally:
        raw.close()


async def ws_client(bench: Bench, n: int, ready) -> None:
    ws = await RawSocket.open(bench.endpoint)
    try:
        messages = ws.messages()
        await anext(messages)  # connect.challenge
        ws.send(_connect_frame(bench.endpoint, f"bench-ws-{n}-{uuid.uuid4().hex[:6]}"))
        while b'"id":"c"' not in (await anext(messages))[1].replace(b" ", b""):
            pass
        ready()
        async for arrived, payload in messages:
            bench.check("websocket", n, payload.decode(), arrived)
    finally:
        ws.close()


async def _round(bench: Bench, expected: int) -> None:
    """One trigger connection; wait until every client saw its presence event."""
    marker = f"bench-trigger-{uuid.uuid4().hex}"
    bench.watch = marker
    bench.seen = {t: set() for t in TRANSPORTS}
    bench.arrivals = {t: [] for t in TRANSPORTS}
    async with websockets.connect(bench.endpoint.url) as trigger:
        await trigger.recv()
        bench.sent_at = time.time_ns() / 1e9
        await trigger.send(json.dumps(_connect_frame(bench.endpoint, marker)))
        deadline = time.monotonic() + ROUND_TIMEOUT
        while time.monotonic() < deadline:
            if all(len(bench.arrivals[t]) >= expected for t in TRANSPORTS):
                break
            await asyncio.sleep(0.01)
    bench.watch = None
    for t in TRANSPORTS:
        bench.latencies[t] += [a - bench.sent_at for a in bench.arrivals[t]]
        bench.missed[t] += expected - len(bench.arrivals[t])


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(endpoint: Endpoint, *, clients: int, rounds: int, log) -> dict[str, Any]:
    """Connect ``clients`` of each transport, run ``rounds`` triggers, report p50/p99."""
    bench = Bench(endpoint)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    # idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s)
    # closes them: reusing one it is closing failed the handshake with ReadError('')
    limits = httpx.Limits(
        max_connections=clients * 2 + 10,
        max_keepalive_connections=clients * 2,
        keepalive_expiry=2.0,
    )
    timeout = httpx.Timeout(30.0, read=POLL_TIMEOUT_MS / 1000 + 10)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        connected = 0

        def ready() -> None:
            nonlocal connected
            connected += 1

        tasks = []
        for n in range(clients):
            tasks += [
                asyncio.create_task(poll_client(http, bench, n, ready)),
                asyncio.create_task(sse_client(http, bench, n, ready)),
                asyncio.create_task(ws_client(bench, n, ready)),
            ]
            if n % 20 == 19:
                await asyncio.sleep(0.2)  # connect in waves
        log(f"connecting {clients} clients per transport")
        for _ in range(600):
            failed = [t for t in tasks if t.done()]
            if failed:
                exc = failed[0].exception()
                raise BenchError(f"a client failed while connecting: {exc!r}")
            if connected == clients * 3:
                break
            await asyncio.sleep(0.1)
        else:
            raise BenchError(f"only {connected} of {clients * 3} clients connected")
        await asyncio.sleep(1.0)
        log(f"{rounds} rounds")
        for _ in range(rounds):
            await asyncio.sleep(ROUND_GAP)
            await _round(bench, clients)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return _report(bench, clients, rounds)


def _report(bench: Bench, clients: int, rounds: int) -> dict[str, Any]:
    figures = {}
    for t in TRANSPORTS:
        values = bench.latencies[t]
        p50, p99 = _percentile(values, 0.5), _percentile(values, 0.99)
        figures[t] = {
            "p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "p99_ms": None if p99 is None else round(p99 * 1000, 2),
            "deliveries": len(values),
            "missed": bench.missed[t],
        }
    poll99, sse99, ws99 = (figures[t]["p99_ms"] for t in TRANSPORTS)
    verdicts = {
        "poll_p99_under_100ms": poll99 is not None and poll99 < 100,
        "sse_p99_within_2x_websocket": None not in (sse99, ws99) and sse99 <= 2 * ws99,
    }
    return {"mode": "bridge", "clients": clients, "rounds": rounds, **figures, **verdicts}


def table(report: dict[str, Any]) -> str:
    """The report as a few readable lines."""
    lines = [
        f"bridge bench: {report['clients']} clients per transport, {report['rounds']} rounds",
        f"{'transport':<10} {'p50 ms':>8} {'p99 ms':>8} {'delivered':>10} {'missed':>7}",
    ]
    for t in TRANSPORTS:
        f = report[t]
        lines.append(
            f"{t:<10} {f['p50_ms']!s:>8} {f['p99_ms']!s:>8} {f['deliveries']:>10} {f['missed']:>7}"
        )
    lines.append(f"poll p99 < 100 ms: {'yes' if report['poll_p99_under_100ms'] else 'NO'}")
    lines.append(
        f"sse p99 within 2x websocket: {'yes' if report['sse_p99_within_2x_websocket'] else 'NO'}"
    )
    return "\n".join(lines)
