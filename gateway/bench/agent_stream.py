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
import json
import re
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.bench.client import BenchError, Endpoint
from gateway.bench.rawsocket import RawSocket
from gateway.bench.scaled import ScaledRun
from gateway.protocol.events import AGENT_TERMINAL

#: Added p99 targets: the embedded gateway, and the scaled setup (run in a Celery worker).
EMBEDDED_P99_TARGET_MS = 2.0
SCALED_P99_TARGET_MS = 5.0

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


async def through_gateway(
    endpoint: Endpoint, agent_id: str, chunks: int, collector: _Collector
) -> None:
    """One client: ``agent`` with ``/bench N`` on a fresh session, stamps read on arrival."""
    ws = await RawSocket.open(endpoint)
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
        await _read_run(frames, collector)
    finally:
        ws.close()


async def _read_run(frames, collector: _Collector) -> None:
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
                raise BenchError(f"the run ended with {payload['type']}: {payload.get('error')}")
            return


async def gateway_streams(endpoint: Endpoint, agent_id: str, chunks: int, streams: int):
    """``streams`` clients at once, each streaming its own run; figures over all chunks."""
    collector = _Collector()
    await asyncio.gather(
        *(through_gateway(endpoint, agent_id, chunks, collector) for _ in range(streams))
    )
    return collector.figures()


async def in_process(chunks: int, streams: int = 1) -> StreamFigures:
    """The same model and runner, events handed to a callback instead of the gateway."""
    from agents.runtime.runner import AgentSpec, run_turn

    collector = _Collector()

    async def emit(step: dict[str, Any]) -> None:
        if step["type"] == "agent-stream":
            collector.add(step.get("text"), time.time_ns())

    async def one() -> None:
        await run_turn(
            AgentSpec(agent_id="bench", model="wingman:echo"),
            history=[],
            prompt=f"/bench {chunks}",
            working_folder=Path("."),
            emit=emit,
        )

    await asyncio.gather(*(one() for _ in range(streams)))
    return collector.figures()


def _pair(remote: StreamFigures, local: StreamFigures) -> dict[str, Any]:
    return {
        "gateway": remote.as_dict(),
        "added_p99_ms": round(remote.p99_ms - local.p99_ms, 3),
        "rate_ratio": round(
            remote.chunks_per_s / local.chunks_per_s if local.chunks_per_s else 0.0, 3
        ),
    }


def _summary(pairs: list[dict[str, Any]], p99_target_ms: float) -> dict[str, Any]:
    added_p99 = statistics.median(r["added_p99_ms"] for r in pairs)
    rate_ratio = statistics.median(r["rate_ratio"] for r in pairs)
    return {
        "gateway": _medians([r["gateway"] for r in pairs]),
        "added_p99_ms": added_p99,
        "rate_ratio": rate_ratio,
        "targets": {
            f"added_p99_under_{p99_target_ms:g}ms": added_p99 < p99_target_ms,
            "rate_at_least_half": rate_ratio >= 0.5,
        },
    }


async def measure(
    endpoint: Endpoint,
    agent_id: str,
    chunks: int,
    rounds: int = 3,
    *,
    streams: int = 1,
    scaled: ScaledRun | None = None,
) -> dict[str, Any]:
    """``rounds`` rounds of runs one after the other (so every side sees the same machine
    state): in-process, through the gateway at ``endpoint`` and, given ``scaled``, through
    the scaled setup's gateway with the run executing in its Celery worker. The verdicts
    use the medians."""
    await in_process(min(chunks, 50))  # warm-up: imports, graph build
    if scaled is not None:  # warm-up: the worker's first task imports the agent runtime
        await gateway_streams(scaled.endpoint, agent_id, min(chunks, 50), 1)
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        local = await in_process(chunks, streams)
        remote = await gateway_streams(endpoint, agent_id, chunks, streams)
        run = {**_pair(remote, local), "in_process": local.as_dict()}
        if scaled is not None:
            run["scaled"] = _pair(
                await gateway_streams(scaled.endpoint, agent_id, chunks, streams), local
            )
        runs.append(run)
    report: dict[str, Any] = {
        "mode": "agent-stream",
        "url": endpoint.url,
        "agent": agent_id,
        "chunks": chunks,
        "streams": streams,
        "rounds": runs,
        "in_process": _medians([r["in_process"] for r in runs]),
        **_summary(runs, EMBEDDED_P99_TARGET_MS),
    }
    if scaled is not None:
        report["scaled"] = {
            **scaled.describe(),
            **_summary([r["scaled"] for r in runs], SCALED_P99_TARGET_MS),
        }
    return report


def _medians(figures: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(f[key] for f in figures) for key in figures[0]}
