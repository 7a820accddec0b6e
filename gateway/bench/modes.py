"""``wingman gateway bench --mode webhook|routines|invoke|bridge``: their options and runs (the
measuring is in ``webhook.py``, ``routines.py``, ``invoke.py`` and ``bridge.py``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable

from gateway.bench.client import BenchError, Endpoint


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The webhook, routines, invoke and bridge modes' options."""
    _add_routines_arguments(p)
    _add_webhook_arguments(p)
    p.add_argument(
        "--invokes",
        type=_positive,
        default=2000,
        help="invoke mode: round trips to measure, each way (default 2000)",
    )
    p.add_argument(
        "--clients",
        type=_positive,
        default=200,
        help="bridge: clients per transport, all connected at once (default 200); "
        "--broadcasts sets the rounds",
    )


def _add_routines_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--routines",
        type=_positive,
        default=500,
        help="routines: how many routines are due at the same minute (default 500)",
    )
    p.add_argument(
        "--setup",
        choices=["both", "embedded", "scaled"],
        default="both",
        help="routines: embedded (one gateway), scaled (gateway + worker + one beat on "
        "REDIS_URL and the PostgreSQL server of DATABASE_URL), or both (default)",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=16,
        help="routines and agent-stream --scaled: the Celery worker's concurrency (default 16)",
    )
    p.add_argument(
        "--worker-processes",
        type=_positive,
        default=1,
        help="routines: how many Celery worker processes the scaled setup starts, each with "
        "--workers slots (default 1; README recommends one per core)",
    )
    p.add_argument(
        "--pool",
        choices=["prefork", "threads"],
        default="threads",
        help="routines and agent-stream --scaled: the Celery worker's pool (default threads, "
        "as README's scaled setup; prefork: a process, event loop and CPU core per slot)",
    )
    p.add_argument(
        "--keep-state",
        action="store_true",
        help="routines: keep each setup's throw-away state dir (its processes' logs) "
        "instead of removing it at the end",
    )


def _add_webhook_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--deliveries",
        type=_positive,
        default=1000,
        help="webhook: requests per endpoint in the saturated phase (default 1000)",
    )
    p.add_argument(
        "--rate",
        type=_positive,
        default=100,
        help="webhook: requests per second in the paced phase (default 100)",
    )
    p.add_argument(
        "--seconds", type=_positive, default=5, help="webhook: paced phase length (default 5)"
    )
    p.add_argument(
        "--webhooks",
        type=_positive,
        default=20,
        help="webhook: temporary webhooks (threads) the deliveries go round-robin to "
        "(default 20; made on --agent, which must use the offline model, and removed after)",
    )
    p.add_argument(
        "--http-concurrency",
        type=_positive,
        default=16,
        help="webhook: keep-alive connections in the saturated phase (default 16)",
    )


def finish(
    args: argparse.Namespace, measure: Callable[[], dict], table: Callable[[dict], str]
) -> int:
    """Run ``measure``; print its table (and ``--json``). 0, or 1 when the run failed."""
    try:
        report = measure()
    except (BenchError, OSError) as exc:
        print(f"wingman: bench failed: {exc}", file=sys.stderr, flush=True)
        return 1
    print(table(report), flush=True)
    if args.json:
        print(json.dumps(report), flush=True)
    return 0


def run_webhook(args: argparse.Namespace, endpoint: Endpoint) -> int:
    """``args.webhook_targets``: (path, secret) of the webhooks to post to, made by the
    ``wingman`` CLI (the gateway does not import the webhooks app)."""
    from gateway.bench import webhook

    base = f"http://{endpoint.host}:{endpoint.port}"
    paths = tuple(path for path, _ in args.webhook_targets)
    headers = tuple({"Authorization": f"Bearer {s}"} for _, s in args.webhook_targets)
    measure = webhook.measure(
        base,
        webhook.Target("bare view", ("/bench/noop",), ({},)),
        webhook.Target("webhook", paths, headers),
        total=args.deliveries,
        concurrency=args.http_concurrency,
        rate=args.rate,
        seconds=args.seconds,
    )
    return finish(args, lambda: asyncio.run(measure), webhook.table)


def run_routines(args: argparse.Namespace) -> int:
    """N routines due at one minute, fired by the real scheduler (embedded, scaled)."""
    from gateway.bench import routines

    setups = ["embedded", "scaled"] if args.setup == "both" else [args.setup]
    return finish(
        args,
        lambda: routines.measure(
            n=args.routines,
            setups=setups,
            lead=60.0,
            timeout=300.0,
            redis_url=os.environ.get("REDIS_URL"),
            database_url=os.environ.get("DATABASE_URL"),
            workers=args.workers,
            pool=args.pool,
            worker_processes=args.worker_processes,
            keep=args.keep_state,
        ),
        routines.table,
    )


def run_invoke(args: argparse.Namespace, endpoint: Endpoint) -> int:
    """node.invoke round trips through the gateway vs a direct WebSocket echo."""
    from gateway.bench import invoke

    measure = invoke.measure(endpoint, invokes=args.invokes)
    return finish(args, lambda: asyncio.run(measure), invoke.table)


def run_bridge(args: argparse.Namespace, endpoint: Endpoint) -> int:
    """Event delivery latency over /bridge/poll, /bridge/sse and WebSocket."""
    from gateway.bench import bridge

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    measure = bridge.measure(endpoint, clients=args.clients, rounds=args.broadcasts, log=log)
    return finish(args, lambda: asyncio.run(measure), bridge.table)
