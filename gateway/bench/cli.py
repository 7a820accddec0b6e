"""``wingman gateway bench``: arguments, defaults from the settings, and the two runs.

``wingman/cli.py`` imports :func:`add_bench_arguments` and :func:`run_bench` (Django is set
up before ``run_bench`` is called). The measurements are in ``measure.py``, the baseline
server in ``baseline.py``, the table in ``report.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from gateway.bench import baseline, modes, rooms_cli, stream_cli
from gateway.bench.client import BenchError, Endpoint
from gateway.bench.measure import Run, RunResult
from gateway.bench.report import build, table

BASELINE_START_TIMEOUT = 15.0
BASELINE_STOP_TIMEOUT = 5.0
#: File descriptors the bench needs besides its sockets (Python, pipes, the baseline's pipes).
SPARE_FDS = 64

DESCRIPTION = """\
Open N authenticated connections to a running gateway and measure connect time, ping round
trips, the fan-out of one event to all N (latency p50/p99, deliveries/s) and the server's
RSS; then run the same measurements against a minimal pure-websockets server started for
the comparison (python -m gateway.bench.baseline), and print each figure with its ratio.
"""

EPILOG = """\
The fan-out event is the `presence` event both servers broadcast to every connection when
a client connects: each round opens one extra trigger connection. Targets (1000
connections): fan-out p99 < 50 ms, connect wall time <= 2x the baseline, RSS < 150 MB.
Exit status is 0 whatever the figures; 1 only when the run itself fails.

Every connection is a file descriptor on both sides. The bench raises its own open-file
limit to the hard limit, but the gateway's limit is the gateway's: start it from a shell
where `ulimit -n` is above N (e.g. `ulimit -n 4096; wingman gateway run`).
RSS needs the gateway's process id: --pid, or the PID file of `wingman gateway start`.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench`` sub-command's options."""
    p.description = DESCRIPTION
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--mode",
        choices=["fanout", "agent-stream", "webhook", "routines", "rooms", "invoke", "bridge"],
        default="fanout",
        help="fanout: N connections, connect/ping/fan-out/RSS (default); agent-stream: the "
        "offline model streaming through the gateway vs in-process; webhook: deliveries to "
        "POST /webhooks/<id> vs a bare Django view (POST /bench/noop) on the same server; "
        "routines: N routines due at one minute, fired by the real scheduler in fresh "
        "processes (embedded and scaled); rooms: N wingman-node connections in rooms "
        "broadcasting at stepped rates vs a pure-websockets node server (--url may list "
        "several gateways, comma-separated); invoke: node.invoke round trips through the "
        "gateway vs a direct WebSocket echo between the same two programs; bridge: event "
        "delivery latency over /bridge/poll, /bridge/sse and WebSocket",
    )
    modes.add_arguments(p)
    stream_cli.add_arguments(p)
    rooms_cli.add_arguments(p)
    _add_connection_arguments(p)


def _add_connection_arguments(p: argparse.ArgumentParser) -> None:
    """Where the gateway is, and the fan-out mode's load."""
    p.add_argument("--url", help="gateway URL (default ws://<host>:<port>/ from the config)")
    p.add_argument("--token", help="gateway token (default: the configured token)")
    p.add_argument("--password", help="gateway password (default: the configured password)")
    p.add_argument(
        "-n", "--connections", type=_positive, default=1000, help="connections (default 1000)"
    )
    p.add_argument(
        "--pings",
        type=_non_negative,
        default=500,
        help="ping round trips to sample, spread over the connections (default 500)",
    )
    p.add_argument(
        "--broadcasts", type=_positive, default=20, help="fan-out rounds to measure (default 20)"
    )
    p.add_argument(
        "--concurrency", type=_positive, default=200, help="connects in flight (default 200)"
    )
    p.add_argument(
        "--pid", type=int, help="the gateway's process id, for RSS (default: from its PID file)"
    )
    p.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    p.add_argument(
        "--no-baseline", action="store_true", help="measure the gateway only (no ratios)"
    )
    p.add_argument(
        "--baseline-hello",
        choices=["snapshot", "small"],
        default="snapshot",
        help="the baseline's hello-ok: with the presence snapshot the protocol requires, as "
        "the gateway sends it (default), or small (no snapshot: a floor, not a like-for-like)",
    )


@dataclass(frozen=True)
class Options:
    endpoint: Endpoint
    pid: int | None
    connections: int
    pings: int
    broadcasts: int
    concurrency: int
    baseline: bool
    baseline_snapshot: bool


def run_bench(args: argparse.Namespace) -> int:
    """Run the bench; print the table (and JSON). 0 unless the run itself failed."""
    if args.mode == "agent-stream":
        return _run_agent_stream(args)
    if args.mode == "webhook":
        return modes.run_webhook(args, _options(args).endpoint)
    if args.mode == "routines":
        return modes.run_routines(args)
    if args.mode == "rooms":
        return _run_rooms(args)
    if args.mode == "invoke":
        return modes.run_invoke(args, _options(args).endpoint)
    if args.mode == "bridge":
        return modes.run_bridge(args, _options(args).endpoint)
    try:
        options = _options(args)
        _check_open_file_limits(options)
        report = asyncio.run(_bench(options))
    except BenchError as exc:
        print(f"wingman: bench failed: {exc}", file=sys.stderr, flush=True)
        return 1
    print(table(report), flush=True)
    if args.json:
        print(json.dumps(report), flush=True)
    return 0


def _run_agent_stream(args: argparse.Namespace) -> int:
    return modes.finish(
        args,
        lambda: asyncio.run(stream_cli.measure(args, _options(args).endpoint)),
        stream_cli.table,
    )


def _run_rooms(args: argparse.Namespace) -> int:
    from django.conf import settings

    cfg = settings.WINGMAN
    token = args.token if args.token is not None else cfg.token
    url = args.url or _default_url(cfg.host, cfg.port)
    return rooms_cli.run(args, url, token)


# options ---------------------------------------------------------------------------------
def _options(args: argparse.Namespace) -> Options:
    from django.conf import settings

    cfg = settings.WINGMAN
    url = args.url or _default_url(cfg.host, cfg.port)
    token, password = args.token, args.password
    if token is None and password is None:
        if cfg.auth_mode == "token":
            token = cfg.token
        elif cfg.auth_mode == "password":
            password = cfg.password
    endpoint = Endpoint.parse(url, token=token, password=password)
    return Options(
        endpoint=endpoint,
        pid=_server_pid(args.pid, cfg.state_dir, endpoint.port),
        connections=args.connections,
        pings=args.pings,
        broadcasts=args.broadcasts,
        concurrency=args.concurrency,
        baseline=not args.no_baseline,
        baseline_snapshot=args.baseline_hello == "snapshot",
    )


def _default_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind-all address is reached via loopback
        host = "127.0.0.1"
    return f"ws://[{host}]:{port}/" if ":" in host else f"ws://{host}:{port}/"


def _server_pid(explicit: int | None, state_dir: Path, port: int) -> int | None:
    """``--pid``, else the PID file's process when it serves ``port``; else None (RSS unknown)."""
    from gateway.server import daemon

    if explicit is not None:
        if not psutil.pid_exists(explicit):
            raise BenchError(f"--pid {explicit}: no such process")
        return explicit
    info = daemon.read_pid(state_dir)
    if info is None or not daemon.is_gateway_process(info.pid):
        return None
    served = urlsplit(f"ws://{info.address}").port if info.address else None
    return info.pid if served == port else None


def _check_open_file_limits(options: Options) -> None:
    need = options.connections + SPARE_FDS
    have = baseline.raise_open_file_limit()
    if have < need:
        raise BenchError(
            f"open-file limit {have} is too low for {options.connections} connections "
            f"(raise the hard limit: ulimit -Hn {need})"
        )
    limit = _process_nofile(options.pid)
    if limit is not None and limit < options.connections + 16:
        _log(
            f"warning: the gateway (pid {options.pid}) may open only {limit} files; "
            f"restart it with `ulimit -n {need}` or connections will fail"
        )


def _process_nofile(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)[0]
    except (psutil.Error, OSError, AttributeError):
        return None


# runs ------------------------------------------------------------------------------------
def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _rss_sampler(pid: int | None) -> Callable[[], int | None]:
    if pid is None:
        return lambda: None
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return lambda: None

    def sample() -> int | None:
        try:
            return proc.memory_info().rss
        except psutil.Error:
            return None

    return sample


def _run(options: Options, endpoint: Endpoint, pid: int | None, name: str) -> Run:
    return Run(
        endpoint,
        connections=options.connections,
        pings=options.pings,
        broadcasts=options.broadcasts,
        concurrency=options.concurrency,
        rss=_rss_sampler(pid),
        log=lambda message: _log(f"{name}: {message}"),
    )


async def _bench(options: Options) -> dict:
    ep = options.endpoint
    gateway = await _run(options, ep, options.pid, "gateway").measure()
    base: RunResult | None = None
    if options.baseline:
        server = _baseline_server(ep.token, ep.password, snapshot=options.baseline_snapshot)
        async with server as (url, pid):
            endpoint = Endpoint.parse(url, token=ep.token, password=ep.password)
            base = await _run(options, endpoint, pid, "baseline").measure()
    meta = {
        "url": ep.url,
        "connections": options.connections,
        "pings": options.pings,
        "broadcasts": options.broadcasts,
        "concurrency": options.concurrency,
        "pid": options.pid,
        "fanout_from": "trigger connect sent",
        "baseline_hello": "snapshot" if options.baseline_snapshot else "small",
    }
    return build(gateway, base, meta=meta)


@contextlib.asynccontextmanager
async def _baseline_server(
    token: str | None, password: str | None, *, snapshot: bool
) -> AsyncIterator[tuple[str, int]]:
    """Start ``python -m gateway.bench.baseline`` on a free loopback port; stop it after."""
    env = {**os.environ, baseline.TOKEN_ENV: token or "", baseline.PASSWORD_ENV: password or ""}
    args = ["--port", "0", "--exit-on-stdin-eof", *([] if snapshot else ["--small-hello"])]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.bench.baseline",
        *args,
        stdin=asyncio.subprocess.PIPE,  # the baseline exits when this closes
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        url = await _baseline_url(proc)
        _log(f"baseline: pid {proc.pid} on {url}")
        yield url, proc.pid
    finally:
        await _stop(proc)


async def _baseline_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None  # noqa: S101 - created with stdout=PIPE
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), BASELINE_START_TIMEOUT)
    except TimeoutError:
        raise BenchError("the baseline server did not start in time") from None
    found = re.search(r"ws://\S+", line.decode(errors="replace"))
    if found is None:
        code = await _stop(proc)
        raise BenchError(f"the baseline server did not start (exit code {code})")
    return found.group(0)


async def _stop(proc: asyncio.subprocess.Process) -> int | None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), BASELINE_STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
    return proc.returncode
