"""``wingman gateway bench --mode agent-stream``: its options and how one invocation
measures the embedded gateway and, with ``--scaled``, a scaled setup it starts."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any

from gateway.bench import agent_stream, stream_report
from gateway.bench.client import Endpoint
from gateway.bench.scaled import ScaledConfig, scaled_setup


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The agent-stream mode's options."""
    p.add_argument(
        "--chunks",
        type=_positive,
        default=2000,
        help="agent-stream: chunks to stream (default 2000)",
    )
    p.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        help="agent-stream: pairs of runs (in-process, then through the gateway); the "
        "verdicts use the medians (default 3)",
    )
    p.add_argument(
        "--agent",
        default="main",
        help="agent-stream: an agent on the offline wingman:echo model (default main)",
    )
    p.add_argument(
        "--streams",
        type=_positive,
        default=1,
        help="agent-stream: runs streaming at once on each side (default 1)",
    )
    _add_scaled_arguments(p)


def _add_scaled_arguments(p: argparse.ArgumentParser) -> None:
    """agent-stream ``--scaled``: the setup the bench starts beside the embedded gateway."""
    p.add_argument(
        "--scaled",
        action="store_true",
        help="agent-stream: also start a scaled setup (a gateway process and a Celery worker "
        "on Redis, runs executing in the worker) and measure it in the same rounds",
    )
    p.add_argument(
        "--redis-url",
        help="--scaled: the Redis to use (default $REDIS_URL, else redis://127.0.0.1:6379/0); "
        "its keys get a unique prefix and are deleted after",
    )
    p.add_argument(
        "--scaled-database-url",
        help="--scaled: a scratch database both processes share, e.g. postgres://... "
        "(default: one SQLite file in a scratch dir)",
    )


async def measure(args: argparse.Namespace, endpoint: Endpoint) -> dict[str, Any]:
    """Run the rounds; the scaled setup is started first and stopped after."""
    rounds = functools.partial(
        agent_stream.measure, endpoint, args.agent, args.chunks, args.rounds, streams=args.streams
    )
    if not args.scaled:
        return await rounds()
    config = ScaledConfig(
        redis_url=args.redis_url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        database_url=args.scaled_database_url,
        pool=args.pool,
        concurrency=args.workers,
    )
    print(
        f"[bench] starting the scaled setup (worker -P {config.pool} -c {config.concurrency})",
        file=sys.stderr,
        flush=True,
    )
    async with scaled_setup(config) as scaled:
        return await rounds(scaled=scaled)


def table(report: dict[str, Any]) -> str:
    """The printed report."""
    return stream_report.table(
        report,
        embedded_ms=agent_stream.EMBEDDED_P99_TARGET_MS,
        scaled_ms=agent_stream.SCALED_P99_TARGET_MS,
    )
