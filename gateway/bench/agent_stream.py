"""``wingman gateway bench --mode agent-stream``: the offline model streaming as fast as it
can, measured at a WebSocket client of the gateway, against the same model driven directly
in-process in the same run.

The model (``wingman:echo`` with the prompt ``/bench N``) stamps each token with the
wall-clock time it was produced (``time.time_ns``, one clock for both processes on this
machine), so per-chunk latency is ``arrival - production`` on both paths. Targets: the
gateway adds < 2 ms p99 per chunk and keeps >= 50% of the in-process chunk rate, judged on
the medians of ``--rounds`` pairs of runs (the in-process rate alone varies by ~25% from run
to run on this machine).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import statistics
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.bench.client import BenchError, Endpoint
from gateway.protocol.events import AGENT_TERMINAL

_STAMP = re.compile(rb'"type":"agent-stream".*"text":"(\d+:\d+) "')


@dataclass
class StreamFigures:
    chunks: int
    chunks_per_s: float
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, float]:
        return {
            "chunks": self.chunks,
            "chunks_per_s": round(self.chunks_per_s, 1),
            "latency_p50_ms": round(self.p50_ms, 3),
            "latency_p99_ms": round(self.p99_ms, 3),
        }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class _Collector:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.first: float | None = None
        self.last: float | None = None

    def add(self, text: str | None, arrived_ns: int) -> None:
        if not text or ":" not in text:
            return
        produced = int(text.strip().split(":", 1)[1])
        self.latencies.append((arrived_ns - produced) / 1e6)
        self.first = self.first or arrived_ns
        self.last = arrived_ns

    def figures(self) -> StreamFigures:
        if not self.latencies or self.first is None or self.last is None:
            raise BenchError("no stamped chunks arrived (is the agent on the wingman:echo model?)")
        span = max((self.last - self.first) / 1e9, 1e-9)
        return StreamFigures(
            chunks=len(self.latencies),
            chunks_per_s=(len(self.latencies) - 1) / span if len(self.latencies) > 1 else 0.0,
            p50_ms=_percentile(self.latencies, 0.50),
            p99_ms=_percentile(self.latencies, 0.99),
        )


class _RawSocket(asyncio.Protocol):
    """A minimal WebSocket client on :class:`asyncio.Protocol` callbacks: the measuring side
    must be much cheaper than the server it measures (they share two cores), so frames are
    cut out of the reads by hand and stamped in ``data_received`` (as ``client.py`` does for
    the fan-out bench), with no task wake-up and no timer per read; only the stamp is looked
    at. A read that waits longer than ``IDLE_SECONDS`` fails the run."""

    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: bytes | None = None
        self.frames: deque[tuple[int, bytes]] = deque()
        self.failure: BenchError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reads = 0
        self._watchdog: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint) -> _RawSocket:
        loop = asyncio.get_running_loop()
        _, ws = await asyncio.wait_for(
            loop.create_connection(cls, endpoint.host, endpoint.port), 10
        )
        key = base64.b64encode(os.urandom(16)).decode()
        path = urlsplit(endpoint.url).path or "/"
        ws.write(
            f"GET {path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            while ws.head is None:
                await asyncio.wait_for(ws._wait(), 10)
            if b" 101 " not in ws.head.split(b"\r\n", 1)[0]:
                raise BenchError(f"WebSocket upgrade refused: {ws.head[:80]!r}")
        except BaseException:
            ws.close()
            raise
        ws._watch()
        return ws

    # asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrived = time.time_ns()
        self.reads += 1
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = bytes(self.buffer[: end + 4])
            del self.buffer[: end + 4]
        for opcode, payload in self._frames():
            if opcode == 0x9:
                self._pong(payload)
            elif opcode == 0x8:
                self._fail(BenchError(f"closed by the gateway: {payload[:2].hex()}"))
            elif opcode in (0x1, 0x2):
                self.frames.append((arrived, payload))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(BenchError("the gateway closed the connection"))

    # -----------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BenchError) -> None:
        self.failure = self.failure or error
        self._wake()

    async def _wait(self) -> None:
        if self.failure is not None:
            raise self.failure
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        if self.failure is not None and not self.frames:
            raise self.failure

    def _watch(self) -> None:
        """Fail a read that waits too long (checked once a second, not armed per read)."""
        loop = asyncio.get_running_loop()
        seen, since = -1, loop.time()

        def check() -> None:
            nonlocal seen, since
            if self.reads != seen or self.waiter is None:
                seen, since = self.reads, loop.time()
            elif loop.time() - since > self.IDLE_SECONDS:
                self._fail(BenchError(f"no frame from the gateway for {self.IDLE_SECONDS:g} s"))
                return
            self._watchdog = loop.call_later(1.0, check)

        self._watchdog = loop.call_later(1.0, check)

    def send(self, obj: dict[str, Any]) -> None:
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x81]) + (
            bytes([0x80 | size])
            if size < 126
            else bytes([0x80 | 126]) + size.to_bytes(2, "big")
            if size < 65536
            else bytes([0x80 | 127]) + size.to_bytes(8, "big")
        )
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.write(head + mask + body)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _pong(self, data: bytes) -> None:
        mask = os.urandom(4)
        self.write(
            bytes([0x8A, 0x80 | len(data)])
            + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        )

    async def messages(self):
        """Yield (arrival time_ns, message bytes) for every text/binary frame."""
        frames = self.frames
        while True:
            while frames:
                yield frames.popleft()
            await self._wait()

    def _frames(self):
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            opcode, size = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if size == 126:
                size, start = int.from_bytes(buf[start : start + 2], "big"), start + 2
            elif size == 127:
                size, start = int.from_bytes(buf[start : start + 8], "big"), start + 8
            if len(buf) < start + size:
                break
            yield opcode, bytes(buf[start : start + size])
            pos = start + size
        del buf[:pos]

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.transport is not None:
            self.transport.close()


async def through_gateway(endpoint: Endpoint, agent_id: str, chunks: int) -> StreamFigures:
    """One client: ``agent`` with ``/bench N`` on a fresh session, stamps read on arrival."""
    collector = _Collector()
    ws = await _RawSocket.open(endpoint)
    try:
        frames = ws.messages()
        await anext(frames)  # connect.challenge
        params: dict[str, Any] = {
            "minProtocol": 3,
            "maxProtocol": 4,
            "client": {
                "id": "bench",
                "version": "1",
                "mode": "probe",
                "instanceId": uuid.uuid4().hex,
            },
        }
        auth = {k: v for k, v in (("token", endpoint.token), ("password", endpoint.password)) if v}
        if auth:
            params["auth"] = auth
        ws.send({"type": "req", "id": "c", "method": "connect", "params": params})
        _, raw = await anext(frames)
        hello = json.loads(raw)
        if not hello.get("ok"):
            raise BenchError(f"handshake refused: {hello.get('error')}")
        session = f"agent:{agent_id}:bench:{uuid.uuid4().hex[:8]}"
        ws.send(
            {
                "type": "req",
                "id": "run",
                "method": "agent",
                "params": {
                    "message": f"/bench {chunks}",
                    "sessionKey": session,
                    "idempotencyKey": uuid.uuid4().hex,
                },
            }
        )
        deadline = time.monotonic() + 120
        async for arrived, raw in frames:
            if time.monotonic() > deadline:
                raise BenchError("the run did not finish within 120 s")
            stamp = _STAMP.search(raw)
            if stamp is not None:
                collector.add(stamp.group(1).decode(), arrived)
                continue
            frame = json.loads(raw)
            if frame.get("type") == "res" and not frame.get("ok"):
                raise BenchError(f"agent refused: {frame.get('error')}")
            payload = frame.get("payload") or {}
            if frame.get("event") == "agent" and payload.get("type") in AGENT_TERMINAL:
                if payload["type"] != "agent-complete":
                    raise BenchError(
                        f"the run ended with {payload['type']}: {payload.get('error')}"
                    )
                break
    finally:
        ws.close()
    return collector.figures()


async def in_process(chunks: int) -> StreamFigures:
    """The same model and runner, events handed to a callback instead of the gateway."""
    from agents.runtime.runner import AgentSpec, run_turn

    collector = _Collector()

    async def emit(step: dict[str, Any]) -> None:
        if step["type"] == "agent-stream":
            collector.add(step.get("text"), time.time_ns())

    await run_turn(
        AgentSpec(agent_id="bench", model="wingman:echo"),
        history=[],
        prompt=f"/bench {chunks}",
        working_folder=Path("."),
        emit=emit,
    )
    return collector.figures()


async def measure(
    endpoint: Endpoint, agent_id: str, chunks: int, rounds: int = 3
) -> dict[str, Any]:
    """``rounds`` pairs of runs, in-process then through the gateway, one after the other
    (so both sides see the same machine state); the verdicts use the medians."""
    await in_process(min(chunks, 50))  # warm-up: imports, graph build
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        local = await in_process(chunks)
        remote = await through_gateway(endpoint, agent_id, chunks)
        runs.append(
            {
                "gateway": remote.as_dict(),
                "in_process": local.as_dict(),
                "added_p99_ms": round(remote.p99_ms - local.p99_ms, 3),
                "rate_ratio": round(
                    remote.chunks_per_s / local.chunks_per_s if local.chunks_per_s else 0.0, 3
                ),
            }
        )
    added_p99 = statistics.median(r["added_p99_ms"] for r in runs)
    rate_ratio = statistics.median(r["rate_ratio"] for r in runs)
    return {
        "mode": "agent-stream",
        "url": endpoint.url,
        "agent": agent_id,
        "chunks": chunks,
        "rounds": runs,
        "gateway": _medians([r["gateway"] for r in runs]),
        "in_process": _medians([r["in_process"] for r in runs]),
        "added_p99_ms": added_p99,
        "rate_ratio": rate_ratio,
        "targets": {
            "added_p99_under_2ms": added_p99 < 2.0,
            "rate_at_least_half": rate_ratio >= 0.5,
        },
    }


def _medians(figures: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(f[key] for f in figures) for key in figures[0]}


def table(report: dict[str, Any]) -> str:
    verdict = {True: "PASS", False: "MISS"}
    head = (
        f"{'round':<7}{'gateway chunks/s':>17}{'in-process':>12}{'ratio':>8}"
        f"{'gw p50 / p99 ms':>18}{'in-proc p99':>13}{'added p99':>11}"
    )

    def row(name: str, r: dict[str, Any]) -> str:
        g, b = r["gateway"], r["in_process"]
        return (
            f"{name:<7}{g['chunks_per_s']:>17,.0f}{b['chunks_per_s']:>12,.0f}"
            f"{r['rate_ratio']:>7.2f}x{g['latency_p50_ms']:>9.3f} / {g['latency_p99_ms']:<6.3f}"
            f"{b['latency_p99_ms']:>13.3f}{r['added_p99_ms']:>11.3f}"
        )

    median = {
        "gateway": report["gateway"],
        "in_process": report["in_process"],
        "rate_ratio": report["rate_ratio"],
        "added_p99_ms": report["added_p99_ms"],
    }
    lines = [
        f"wingman gateway bench --mode agent-stream: {report['chunks']} chunks x "
        f"{len(report['rounds'])} rounds, agent {report['agent']!r}",
        head,
        "-" * len(head),
        *(row(str(i), r) for i, r in enumerate(report["rounds"], 1)),
        row("median", median),
        "",
        f"gateway adds {report['added_p99_ms']:.3f} ms at p99 (median; target < 2 ms): "
        f"{verdict[report['targets']['added_p99_under_2ms']]}",
        f"gateway keeps {report['rate_ratio']:.0%} of the in-process chunk rate (median; "
        f"target >= 50%): {verdict[report['targets']['rate_at_least_half']]}",
        "latency = arrival - production time stamped by the model (time.time_ns, same machine)",
    ]
    return "\n".join(lines)
