"""The ``wingman`` command line. ``python manage.py gateway <sub>`` runs the same commands.

Flags become ``WINGMAN_*`` environment variables before Django reads its settings, so the
precedence is flags > environment > ``wingman.config.json`` > defaults everywhere.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_NOT_RUNNING = 3
#: Another gateway holds the state dir (``gateway run`` / ``start``).
EXIT_ALREADY_RUNNING = 4

#: flag dest → environment variable it sets.
_FLAG_ENV = {
    "host": "WINGMAN_HOST",
    "bind": "WINGMAN_BIND",
    "port": "WINGMAN_PORT",
    "auth_mode": "WINGMAN_AUTH_MODE",
    "token": "WINGMAN_GATEWAY_TOKEN",
    "password": "WINGMAN_GATEWAY_PASSWORD",
    "config": "WINGMAN_CONFIG",
    "name": "WINGMAN_GATEWAY_NAME",
    "server": "WINGMAN_ASGI_SERVER",
    "ui_port": "WINGMAN_CONTROL_UI_PORT",
    "discovery": "WINGMAN_DISCOVERY",
}


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host", help="interface to bind; wins over --bind (default 127.0.0.1; WINGMAN_HOST)"
    )
    p.add_argument(
        "--bind",
        choices=["loopback", "lan", "tailnet", "auto"],
        help="loopback (default) | lan (all interfaces) | tailnet (the Tailscale address) | "
        "auto (tailnet when Tailscale is up, else loopback); gateway.bind, WINGMAN_BIND",
    )
    p.add_argument("--port", type=int, help="port (default 18789, 0 = any free; WINGMAN_PORT)")
    p.add_argument(
        "--auth-mode",
        choices=["token", "password", "none"],
        help="token | password | none (default: token if a token is set; WINGMAN_AUTH_MODE)",
    )
    p.add_argument("--token", help="auth token (WINGMAN_GATEWAY_TOKEN)")
    p.add_argument("--password", help="auth password (WINGMAN_GATEWAY_PASSWORD)")
    p.add_argument("--config", help="path to wingman.config.json (default: in the state dir)")
    p.add_argument("--name", help="gateway name shown to clients (WINGMAN_GATEWAY_NAME)")
    p.add_argument(
        "--server",
        choices=["uvicorn", "daphne"],
        help="ASGI server (default uvicorn; WINGMAN_ASGI_SERVER)",
    )
    p.add_argument(
        "--ui-port",
        type=int,
        help="second listener for the Control UI (default 18790, 0 = any free; "
        "WINGMAN_CONTROL_UI_PORT; WINGMAN_CONTROL_UI=false turns it off)",
    )
    p.add_argument(
        "--discovery",
        choices=["mdns", "none"],
        help="announce this gateway on the LAN over mDNS (_wingman-gateway._tcp), or not "
        "(default: discovery.enabled in config; WINGMAN_DISCOVERY)",
    )


def _run_args(args: argparse.Namespace) -> list[str]:
    """The server flags again, for the daemon's child (secrets travel in the environment)."""
    out: list[str] = []
    for dest in (
        "host",
        "bind",
        "port",
        "auth_mode",
        "config",
        "name",
        "server",
        "ui_port",
        "discovery",
    ):
        value = getattr(args, dest, None)
        if value is not None:
            out += [f"--{dest.replace('_', '-')}", str(value)]
    return out


def apply_flags(args: argparse.Namespace) -> None:
    for dest, var in _FLAG_ENV.items():
        value = getattr(args, dest, None)
        if value is not None:
            os.environ[var] = os.path.abspath(value) if dest == "config" else str(value)


def deferred_flags(p: argparse.ArgumentParser, module: str, adder: str) -> None:
    """Give sub-command parser ``p`` its flags (``module.adder(p)``) only when it parses or
    shows its help: every ``wingman`` command (``gateway run`` too) builds every parser, and
    importing the bench's and the node's modules for their flags cost ~0.4 s at each start."""
    parse, helps = p.parse_known_args, p.format_help

    def populate() -> None:
        if not getattr(p, "_wingman_populated", False):
            p._wingman_populated = True  # type: ignore[attr-defined]
            getattr(importlib.import_module(module), adder)(p)

    def parse_known_args(args=None, namespace=None):
        populate()
        return parse(args, namespace)

    def format_help() -> str:
        populate()
        return helps()

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]
    p.format_help = format_help  # type: ignore[method-assign]


def add_gateway_commands(parser: argparse.ArgumentParser) -> None:
    """The ``gateway`` sub-commands (shared by ``wingman`` and ``manage.py gateway``)."""
    sub = parser.add_subparsers(dest="gateway_command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the gateway in the foreground (logs to stdout)")
    _server_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "migrate",
        help="apply database migrations once, under a lock (several gateways may start "
        "together); exit 2 on a database migrated by a newer version",
    )
    p.set_defaults(func=cmd_migrate)

    from wingman import ops_cli

    ops_cli.add_install_service(sub)

    p = sub.add_parser("start", help="start the gateway in the background (PID file + log)")
    _server_flags(p)
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="stop the gateway of this state dir (graceful drain)")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("restart", help="stop, then start the background gateway")
    _server_flags(p)
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("status", help="is a gateway running on this state dir? (exit 3 if not)")
    p.set_defaults(func=cmd_status)

    from wingman import gateway_tools_cli

    gateway_tools_cli.add_commands(sub)

    p = sub.add_parser("join", help="join a gateway as a swarm node and print what arrives")
    deferred_flags(p, "wingman.node_cli", "add_join_arguments")

    p = sub.add_parser(
        "bench", help="benchmark a running gateway against a pure-websockets baseline"
    )
    deferred_flags(p, "gateway.bench.cli", "add_bench_arguments")
    p.set_defaults(func=cmd_bench)

    from wingman.discovery_cli import add_discover_command
    from wingman.tunnel_cli import add_tunnel_command

    add_discover_command(sub)
    add_tunnel_command(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wingman", description="Wingman Gateway: a self-hosted runtime for AI agents."
    )
    from wingman import __version__

    parser.add_argument("--version", action="version", version=f"wingman {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    gw = top.add_parser("gateway", help="run and manage the gateway")
    add_gateway_commands(gw)
    from wingman import agent_cli, nodes_cli, rooms_cli, routines_cli, webhooks_cli

    agent_cli.add_commands(top)
    routines_cli.add_commands(top)
    webhooks_cli.add_commands(top)
    rooms_cli.add_commands(top)
    nodes_cli.add_commands(top)
    from wingman import ops_cli

    ops_cli.add_commands(top)
    return parser


# commands ---------------------------------------------------------------------------------
def _cfg():
    from django.conf import settings

    return settings.WINGMAN


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.server import statelock
    from gateway.server.serve import serve

    cfg = _cfg()
    try:  # before anything touches the state dir's database (gateway/server/statelock.py)
        statelock.acquire(cfg.state_dir)
    except statelock.StateDirLocked as exc:
        print(f"wingman: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    _warn_if_redis_unreachable()
    if (code := cmd_migrate(args)) != EXIT_OK:
        return code
    from agents.services.agents import ConfigImportError, bootstrap

    try:
        print(bootstrap(cfg.raw), flush=True)
    except ConfigImportError as exc:
        print(f"wingman: config error: {exc}", file=sys.stderr)
        return 2
    from routines.services.transfer import RoutinesFileError
    from routines.services.transfer import bootstrap as routines_bootstrap

    try:
        imported = routines_bootstrap()
    except RoutinesFileError as exc:
        print(f"wingman: routines.json: {exc}", file=sys.stderr)
        return 2
    if imported:
        print(imported, flush=True)
    print(
        f"Wingman gateway '{cfg.name}': auth {cfg.auth_mode}, state dir {cfg.state_dir}, "
        f"{'redis' if os.environ.get('REDIS_URL') else 'embedded (SQLite, in-memory layer)'}",
        flush=True,
    )
    from wingman.config import is_loopback

    if not is_loopback(cfg.host) and not cfg.tls.on:
        print(
            f"wingman: warning: listening on {cfg.host} without TLS: tokens and messages cross "
            "the network in clear text; set gateway.tls (autoGenerate: true) or use a VPN",
            file=sys.stderr,
            flush=True,
        )
    pid_file = os.environ.get("WINGMAN_PID_FILE")
    from pathlib import Path

    return serve(host=cfg.host, port=cfg.port, pid_file=Path(pid_file) if pid_file else None)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply migrations once (wingman/schema.py); exit 2 on a newer version's database."""
    from wingman.schema import NewerSchema, migrate_once

    try:
        applied = migrate_once()
    except NewerSchema as exc:
        print(f"wingman: refusing to start: {exc}", file=sys.stderr, flush=True)
        return 2
    print(
        f"Migrations: applied {applied}" if applied else "Migrations: database up to date",
        flush=True,
    )
    return EXIT_OK


def _warn_if_redis_unreachable() -> None:
    """The gateway starts without Redis and serves degraded until it answers (README,
    "Running it scaled"): say so in one line instead of a "listening" line alone."""
    from django.conf import settings

    from gateway.state import outage
    from wingman.config import ConfigError

    if not settings.REDIS_URL:
        return
    try:
        problem = outage.probe(settings.REDIS_URL)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from exc
    if problem:
        print(
            f"wingman: warning: Redis at {outage.safe_url(settings.REDIS_URL)} is unreachable "
            f"({problem}); serving degraded until it answers (/health: 503, requests: "
            "UNAVAILABLE)",
            file=sys.stderr,
            flush=True,
        )
        outage.redis_state.known_down(problem)  # said once here; not again by the hub


def cmd_start(args: argparse.Namespace) -> int:
    from gateway.server import daemon

    cfg = _cfg()
    current = daemon.status(cfg.state_dir)
    if current.state == "running":
        print(f"Gateway already running ({_who(current)}) on ws://{current.info.address}/")
        return EXIT_ALREADY_RUNNING
    if current.state == "stale":
        daemon.clear_stale(cfg.state_dir)
        print("Removed a stale PID file.")
    try:
        pid, address = daemon.start(cfg.state_dir, _run_args(args))
    except RuntimeError as exc:
        print(f"wingman: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"Gateway started (pid {pid}) on ws://{address}/")
    print(f"  logs: {daemon.log_path(cfg.state_dir)}")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from gateway.server import daemon

    cfg = _cfg()
    current = daemon.status(cfg.state_dir)
    if current.state == "stale":
        daemon.clear_stale(cfg.state_dir)
        print("Gateway is not running (removed a stale PID file).")
        return EXIT_OK
    if current.state == "stopped":
        print("Gateway is not running.")
        return EXIT_OK
    if not (current.info.pid > 0 and daemon.is_gateway_process(current.info.pid)):
        # e.g. a gateway in another container sharing the state dir: its pid is not ours
        print(f"wingman: cannot stop the gateway holding {cfg.state_dir} ({_who(current)})")
        return EXIT_FAIL
    graceful = daemon.stop(current.info.pid)
    daemon.clear_stale(cfg.state_dir)
    print(
        f"Gateway stopped (pid {current.info.pid})"
        + ("" if graceful else " — killed after timeout")
    )
    return EXIT_OK


def cmd_restart(args: argparse.Namespace) -> int:
    cmd_stop(args)
    return cmd_start(args)


def cmd_status(args: argparse.Namespace) -> int:
    from gateway.server import daemon

    cfg = _cfg()
    current = daemon.status(cfg.state_dir)
    if current.state == "running":
        print(f"Gateway running ({_who(current)}) on ws://{current.info.address}/")
        return EXIT_OK
    if current.state == "stale":
        daemon.clear_stale(cfg.state_dir)
        pid = f" for pid {current.info.pid}" if current.info else ""
        print(f"Gateway is not running (removed a stale PID file{pid}).")
        return EXIT_NOT_RUNNING
    print("Gateway is not running.")
    return EXIT_NOT_RUNNING


def _who(current) -> str:
    return f"pid {current.info.pid}" + (", foreground" if current.foreground else "")


def cmd_bench(args: argparse.Namespace) -> int:
    from gateway.bench.cli import run_bench

    if args.mode != "webhook":
        return run_bench(args)
    from gateway.bench.client import BenchError
    from webhooks.bench import bench_webhooks

    try:
        with bench_webhooks(agent_id=args.agent, count=args.webhooks) as targets:
            args.webhook_targets = targets
            return run_bench(args)
    except BenchError as exc:
        print(f"wingman: bench failed: {exc}", file=sys.stderr, flush=True)
        return 1


# entry ------------------------------------------------------------------------------------
def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")
    import django

    from wingman.database import check_driver

    check_driver()
    django.setup()


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    apply_flags(args)
    from wingman.config import ConfigError

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if getattr(args, "needs_django", True):
            setup_django()
        code = func(args)
    except ConfigError as exc:
        print(f"wingman: config error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
