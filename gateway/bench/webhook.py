"""``wingman gateway bench --mode webhook``: webhook deliveries against the running gateway,
beside a bare Django view on the same server (``POST /bench/noop``), in the same run.

Two phases per endpoint, bare view first:

- saturate: ``concurrency`` keep-alive connections send ``total`` requests back to back:
  requests per second, p50/p99 time to the answer;
- paced: an open loop at ``rate`` requests per second for ``seconds``: p50/p99 measured from
  each request's scheduled time (so a stall is not hidden by sending later).

The deliveries go round-robin to the bench's webhooks (one thread each, so their runs do not
queue behind each other in one session); every accepted delivery starts a run on the
gateway, which is part of what is measured. Targets: the webhook's saturated rate at least
50% of the bare view's, p99 < 50 ms at 100 deliveries/s. The HTTP client is a minimal
HTTP/1.1 keep-alive client (this process must not be the bottleneck on a small machine).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway.bench.client import BenchError


@dataclass(frozen=True)
class Target:
    """Where requests go: paths (used round-robin), headers per path, a body."""

    name: str
    paths: tuple[str, ...]
    headers: tuple[dict[str, str], ...]
    body: bytes = b'{"prompt": "bench"}'


@dataclass
class Phase:
    """One phase's answers: (latency seconds, status) per request, and its wall time."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict:
        latencies = sorted(s for s, _ in self.samples) or [0.0]
        statuses: dict[str, int] = {}
        for _, status in self.samples:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        return {
            "requests": len(self.samples),
            "per_second": round(len(self.samples) / self.wall, 1) if self.wall else 0.0,
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(
                latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2
            ),
            "statuses": statuses,
        }


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            await self.reader.readexactly(length)
            return status
        while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
            await self.reader.readexactly(size + 2)
        await self.reader.readuntil(b"\r\n")
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _connections(base: str, n: int) -> list[Connection]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    try:
        return await asyncio.gather(*(Connection(host, port).open() for _ in range(n)))
    except OSError as exc:
        raise BenchError(f"cannot connect to {host}:{port}: {exc}") from exc


async def saturate(base: str, target: Target, *, total: int, concurrency: int) -> Phase:
    """``total`` requests over ``concurrency`` connections, each sending back to back."""
    conns = await _connections(base, concurrency)
    phase, counter = Phase(), iter(range(total))

    async def worker(conn: Connection) -> None:
        for i in counter:
            k = i % len(target.paths)
            started = time.perf_counter()
            status = await conn.post(target.paths[k], target.body, target.headers[k])
            phase.samples.append((time.perf_counter() - started, status))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        phase.wall = time.perf_counter() - started
        for conn in conns:
            conn.close()
    return phase


async def paced(base: str, target: Target, *, rate: float, seconds: float) -> Phase:
    """An open loop: request i is due at ``i / rate``; latency counts from when it was due."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in await _connections(base, 32):
        pool.put_nowait(conn)
    phase, total = Phase(), int(rate * seconds)
    start = time.perf_counter()

    async def one(i: int) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conn = await pool.get()
        try:
            k = i % len(target.paths)
            status = await conn.post(target.paths[k], target.body, target.headers[k])
            phase.samples.append((time.perf_counter() - due, status))
        finally:
            pool.put_nowait(conn)

    try:
        await asyncio.gather(*(one(i) for i in range(total)))
    finally:
        phase.wall = time.perf_counter() - start
        while not pool.empty():
            pool.get_nowait().close()
    return phase


async def measure(
    base: str,
    bare: Target,
    webhook: Target,
    *,
    total: int,
    concurrency: int,
    rate: float,
    seconds: float,
) -> dict:
    """Both phases on the bare view, then on the webhook: the report."""
    report: dict = {"concurrency": concurrency, "rate": rate, "seconds": seconds}
    for target in (bare, webhook):
        full = await saturate(base, target, total=total, concurrency=concurrency)
        steady = await paced(base, target, rate=rate, seconds=seconds)
        report[target.name] = {"saturate": full.summary(), "paced": steady.summary()}
    bare_rate = report[bare.name]["saturate"]["per_second"]
    hook_rate = report[webhook.name]["saturate"]["per_second"]
    report["rate_ratio"] = round(hook_rate / bare_rate, 2) if bare_rate else None
    report["verdicts"] = {
        "rate >= 50% of the bare view": bool(report["rate_ratio"] and report["rate_ratio"] >= 0.5),
        f"p99 < 50 ms at {rate:g}/s": report[webhook.name]["paced"]["p99_ms"] < 50,
    }
    return report


def table(report: dict) -> str:
    """The report as text."""
    rows = [f"{'':28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}  statuses"]
    for name in ("bare view", "webhook"):
        for phase in ("saturate", "paced"):
            s = report[name][phase]
            rows.append(
                f"{name + ' ' + phase:28}{s['per_second']:>10}{s['p50_ms']:>10}"
                f"{s['p99_ms']:>10}  {json.dumps(s['statuses'])}"
            )
    rows.append(f"webhook/bare rate: {report['rate_ratio']}")
    rows += [f"{'PASS' if ok else 'FAIL'}  {what}" for what, ok in report["verdicts"].items()]
    return "\n".join(rows)
