"""``wingman gateway bench --mode rooms``: its options, the baseline server it starts, and
the report (see ``rooms.py`` for what is measured)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from gateway.bench import baseline
from gateway.bench.client import BenchError, Endpoint
from gateway.bench.rooms import RoomsOptions, measure


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The rooms mode's options (``-n/--connections``, ``--url``, ``--token`` are shared)."""
    p.add_argument("--room-size", type=int, default=10, help="rooms: members per room (default 10)")
    p.add_argument(
        "--start-rate",
        type=float,
        default=1000.0,
        help="rooms: first offered delivery rate, deliveries/s (default 1000)",
    )
    p.add_argument(
        "--rate-factor", type=float, default=1.5, help="rooms: rate step factor (default 1.5)"
    )
    p.add_argument(
        "--refine",
        type=int,
        default=2,
        help="rooms: steps halfway between the highest rate sustained and the first not "
        "(default 2: the answer within factor**(1/4) of the true one)",
    )
    p.add_argument("--max-rate", type=float, default=100_000.0, help="rooms: stop above this rate")
    p.add_argument(
        "--step-seconds", type=float, default=5.0, help="rooms: seconds per rate step (default 5)"
    )


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _options(args: argparse.Namespace, urls: list[str], token: str | None, tag: str):
    if args.room_size < 2 or args.connections % args.room_size:
        raise BenchError("--connections must be a multiple of --room-size (at least 2)")
    if args.refine < 0:
        raise BenchError("--refine must be 0 or more")
    return RoomsOptions(
        endpoints=tuple(Endpoint.parse(u, token=token) for u in urls),
        connections=args.connections,
        room_size=args.room_size,
        start_rate=args.start_rate,
        factor=args.rate_factor,
        refine=args.refine,
        max_rate=args.max_rate,
        step_seconds=args.step_seconds,
        concurrency=min(args.concurrency, 100),
        tag=tag,
    )


async def _both(args: argparse.Namespace, urls: list[str], token: str | None) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    sides = {"gateway": _options(args, urls, token, tag)}
    async with contextlib.AsyncExitStack() as stack:
        if not args.no_baseline:
            url = await stack.enter_async_context(_baseline_server(token))
            sides["baseline"] = replace(_options(args, [url], token, tag), cleanup=False)
        results = await measure(sides, _log)
    return {
        "mode": "rooms",
        "urls": urls,
        "connections": args.connections,
        "room_size": args.room_size,
        "gateway": results["gateway"],
        "baseline": results.get("baseline"),
    }


@contextlib.asynccontextmanager
async def _baseline_server(token: str | None) -> AsyncIterator[str]:
    env = {**os.environ, baseline.TOKEN_ENV: token or ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.bench.rooms_baseline",
        "--port",
        "0",
        "--exit-on-stdin-eof",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None  # noqa: S101 - created with stdout=PIPE
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        found = re.search(r"ws://\S+", line.decode(errors="replace"))
        if found is None:
            raise BenchError("the rooms baseline server did not start")
        _log(f"baseline: pid {proc.pid} on {found.group(0)}")
        yield found.group(0)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def table(report: dict[str, Any]) -> str:
    """The steps of each side, and the verdicts against the targets."""
    lines = [f"rooms bench: {report['connections']} connections in rooms of {report['room_size']}"]
    best: dict[str, float] = {}
    for side in ("gateway", "baseline"):
        data = report.get(side)
        if not data:
            continue
        lines.append(f"{side}:")
        lines.append("  offered/s  delivered/s   p50 ms   p99 ms  errors  sustained")
        for s in data["steps"]:
            lines.append(
                f"  {s['offered']:>9} {s['delivered_per_s']:>12} {s['p50_ms']!s:>8} "
                f"{s['p99_ms']!s:>8} {sum(s['errors'].values()):>7}  {s['sustained']}"
            )
        best[side] = data["best"]["delivered_per_s"] if data["best"] else 0
        lines.append(f"  highest sustained: {best[side]} deliveries/s (p99 < 50 ms)")
    if "gateway" in best:
        lines.append(
            f"target >= 1000 deliveries/s: {'met' if best['gateway'] >= 1000 else 'MISSED'}"
        )
    if best.get("baseline"):
        ratio = best["gateway"] / best["baseline"]
        verdict = "met" if ratio >= 0.5 else "MISSED"
        lines.append(f"gateway/baseline: {ratio:.2f} (target >= 0.50: {verdict})")
    return "\n".join(lines)


def run(args: argparse.Namespace, url: str, token: str | None) -> int:
    """Run the rooms bench; print the table (and JSON). 0 unless the run itself failed."""
    urls = [u.strip() for u in url.split(",") if u.strip()]
    try:
        baseline.raise_open_file_limit()
        report = asyncio.run(_both(args, urls, token))
    except (BenchError, OSError) as exc:
        print(f"wingman: bench failed: {exc}", file=sys.stderr, flush=True)
        return 1
    print(table(report), flush=True)
    if args.json:
        print(json.dumps(report), flush=True)
    return 0
