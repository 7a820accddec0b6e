"""``wingman agent``, ``wingman init`` and ``wingman agents``: talking to and setting up agents."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from wingman.remote_cli import gateway_url, local_pin

EXIT_OK, EXIT_FAIL, EXIT_CANCELLED = 0, 1, 130


def add_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("agent", help="run an agent and stream its answer")
    p.add_argument("prompt", help="what to ask")
    p.add_argument("--agent", dest="agent_id", help="agent id (default: routed / default agent)")
    p.add_argument("--session", help="session key to continue (e.g. agent:main:main)")
    p.add_argument("--gateway", help="gateway URL (default ws://<configured host:port>/ws)")
    p.add_argument("--token", help="gateway token (default WINGMAN_GATEWAY_TOKEN / config)")
    p.add_argument("--password", help="gateway password")
    p.add_argument("--local", action="store_true", help="run in this process, without a gateway")
    add_transport_arguments(p)
    p.add_argument("--json", action="store_true", help="print every event as one JSON line")
    p.set_defaults(func=cmd_agent)

    p = top.add_parser("init", help="write a starter wingman.config.json and agent")
    p.add_argument("--agent", default="main", help="starter agent id (default main)")
    p.add_argument(
        "--model", default="", help='"provider:model" (default: the offline wingman:echo)'
    )
    p.add_argument(
        "--config", dest="init_config", help="where to write (default: in the state dir)"
    )
    p.add_argument("--skip-config", action="store_true", help="do not write the config file")
    p.add_argument("--skip-agent", action="store_true", help="do not create the starter agent")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")
    p.set_defaults(func=cmd_init)

    p = top.add_parser("agents", help="manage agents")
    sub = p.add_subparsers(dest="agents_command", metavar="COMMAND", required=True)
    q = sub.add_parser("import", help="import agents and bindings from wingman.config.json")
    q.add_argument("--config", help="config file (default: in the state dir)")
    q.set_defaults(func=cmd_agents_import)
    q = sub.add_parser("list", help="list agents")
    q.set_defaults(func=cmd_agents_list)


# wingman agent ------------------------------------------------------------------------------
class _Printer:
    """Writes a run's events to the terminal as they arrive."""

    def __init__(self, as_json: bool) -> None:
        # imported here: the protocol's models cost ~0.2 s at the start of every command
        from gateway.protocol.events import AGENT_TERMINAL

        self.as_json = as_json
        self.terminal: dict[str, Any] | None = None
        self.terminal_kinds = AGENT_TERMINAL

    def __call__(self, step: dict[str, Any]) -> None:
        kind = step.get("type")
        if self.as_json:
            print(json.dumps(step), flush=True)
        elif kind == "agent-stream" and step.get("text"):
            sys.stdout.write(step["text"])
            sys.stdout.flush()
        elif kind == "tool-start":
            print(
                f"\n[tool] {step['toolName']}({json.dumps(step.get('toolInput'))})", file=sys.stderr
            )
        elif kind == "tool-end":
            print(
                f"[tool] {step['toolName']} → {str(step.get('toolOutput'))[:200]}", file=sys.stderr
            )
        if kind in self.terminal_kinds:
            self.terminal = step
            if not self.as_json:
                print()
                if kind == "agent-error":
                    print(f"error: {step.get('error')}", file=sys.stderr)
                elif kind == "agent-cancelled":
                    print("cancelled", file=sys.stderr)


def _exit_code(step: dict[str, Any] | None) -> int:
    kind = (step or {}).get("type")
    return {"agent-complete": EXIT_OK, "agent-cancelled": EXIT_CANCELLED}.get(kind, EXIT_FAIL)


def cmd_agent(args: argparse.Namespace) -> int:
    printer = _Printer(args.json)
    runner = _run_local if args.local else _run_remote
    try:
        return asyncio.run(runner(args, printer))
    except KeyboardInterrupt:
        return EXIT_CANCELLED


def add_transport_arguments(p: argparse.ArgumentParser) -> None:
    """``--transport``, ``--auto-transport`` and ``--tls-fingerprint`` of a gateway client."""
    p.add_argument(
        "--transport",
        choices=("websocket", "http"),
        default="auto",
        help="websocket only, or http (the HTTP bridge) only; default: WebSocket, falling "
        "back to the bridge when a proxy refuses the upgrade",
    )
    p.add_argument(
        "--auto-transport",
        dest="transport",
        action="store_const",
        const="auto",
        help="WebSocket, else the HTTP bridge (the default)",
    )
    p.add_argument(
        "--tls-fingerprint",
        help="SHA-256 fingerprint the gateway's certificate must have (wss:// / https://); "
        "a mismatch is refused",
    )


async def _on_interrupt(cancel) -> None:
    """Ctrl+C: cancel the run (once), then let it end with its terminal event."""
    loop = asyncio.get_running_loop()
    fired = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, fired.set)
    try:
        await fired.wait()
        print("\ncancelling…", file=sys.stderr)
        await cancel()
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _run_remote(args: argparse.Namespace, printer: _Printer) -> int:
    from django.conf import settings

    from wingman.client import GatewayCallError, GatewayClient

    cfg = settings.WINGMAN
    url = gateway_url(args)
    client = GatewayClient(
        url,
        token=args.token or cfg.token,
        password=args.password or cfg.password,
        transport=args.transport,
        tls_fingerprint=local_pin(args, cfg),
    )
    try:
        await client.connect()
    except (OSError, TimeoutError) as exc:
        print(
            f"wingman: cannot reach the gateway at {url} ({exc}); start it with "
            "`wingman gateway start`, or use --local",
            file=sys.stderr,
        )
        return EXIT_FAIL
    except GatewayCallError as exc:
        print(f"wingman: the gateway refused the connection: {exc}", file=sys.stderr)
        return EXIT_FAIL
    run: dict[str, str] = {}

    async def cancel() -> None:
        if "id" in run:
            with contextlib.suppress(Exception):
                await client.cancel(run["id"])

    watcher = asyncio.create_task(_on_interrupt(cancel))
    try:
        final = await client.agent(
            args.prompt,
            agent_id=args.agent_id,
            session_key=args.session,
            on_event=printer,
            on_ack=lambda ack: run.__setitem__("id", ack["runId"]),
        )
    except GatewayCallError as exc:
        print(f"wingman: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        watcher.cancel()
        await client.close()
    if printer.terminal is None:  # no events reached us (e.g. after a reconnect): use the result
        text = (final.get("result") or {}).get("text", "")
        if text and not args.json:
            print(text)
        return {"ok": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(final.get("status"), EXIT_FAIL)
    return _exit_code(printer.terminal)


async def _run_local(args: argparse.Namespace, printer: _Printer) -> int:
    from asgiref.sync import sync_to_async
    from django.conf import settings

    from agents.models import RunSource
    from agents.services import runs
    from agents.services.agents import ConfigImportError, bootstrap
    from wingman.schema import migrate_once

    await sync_to_async(migrate_once)()
    try:
        await sync_to_async(bootstrap)(settings.WINGMAN.raw)
    except ConfigImportError as exc:
        print(f"wingman: config error: {exc}", file=sys.stderr)
        return 2

    async def observe(step: dict[str, Any]) -> None:
        printer(step)

    request = runs.RunRequest(
        message=args.prompt,
        source=RunSource.CLI,
        agent_id=args.agent_id,
        session_key=args.session,
        observer=observe,
    )
    try:
        ticket = await runs.run_start(request=request)
    except Exception as exc:
        print(f"wingman: {exc}", file=sys.stderr)
        return EXIT_FAIL
    watcher = asyncio.create_task(_on_interrupt(lambda: runs.run_cancel(ticket.run_id)))
    try:
        await runs.run_wait(ticket.run_id, 86_400)
    finally:
        watcher.cancel()
    return _exit_code(printer.terminal)


# wingman init / agents --------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from django.conf import settings

    from agents.services.agents import ConfigImportError, agents_config_check

    entry = _starter_agent(args)
    try:  # the flags pass the rules of the API and the admin before anything is written
        agents_config_check({"agents": {"list": [entry]}})
    except ConfigImportError as exc:
        flag = "--model" if exc.where.endswith(".model") else "--agent"
        value = args.model if flag == "--model" else args.agent
        print(f"wingman: {flag} {value!r}: {exc.reason}", file=sys.stderr)
        return 2
    cfg = settings.WINGMAN
    path = (
        Path(args.init_config).expanduser()
        if args.init_config
        else cfg.state_dir / "wingman.config.json"
    )
    config = _starter_config(args, cfg, entry)
    if not args.skip_config:
        if path.exists() and not args.force:
            print(f"wingman: {path} exists; use --force to overwrite", file=sys.stderr)
            return EXIT_FAIL
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)
        print(f"Wrote {path}")
        token = config["gateway"]["auth"].get("token")
        if token:
            print(f"  gateway token: {token}  (clients send it; kept only in that file, mode 600)")
    if not args.skip_agent:
        from agents.services.agents import agents_import
        from wingman.schema import migrate_once

        migrate_once()
        result = agents_import(config, update_existing=True)
        (cfg.state_dir / "agents" / args.agent).mkdir(parents=True, exist_ok=True)
        print(f'Agent {args.agent!r} ready ({result}). Try: wingman agent --local "hello"')
    return EXIT_OK


def _starter_agent(args: argparse.Namespace) -> dict[str, Any]:
    from agents.services.agents import STARTER_TOOLS

    entry: dict[str, Any] = {"id": args.agent, "default": True, "tools": list(STARTER_TOOLS)}
    if args.model:
        entry["model"] = args.model
    return entry


def _starter_config(args: argparse.Namespace, cfg, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway": {
            "host": cfg.host,
            "port": cfg.port,
            "auth": {
                "mode": "token",
                "token": os.environ.get("WINGMAN_GATEWAY_TOKEN") or secrets.token_urlsafe(32),
            },
        },
        "agents": {"list": [] if args.skip_agent else [entry], "bindings": []},
    }


def cmd_agents_import(args: argparse.Namespace) -> int:
    from django.conf import settings

    from agents.services.agents import ConfigImportError, agents_config_check, agents_import
    from wingman.schema import migrate_once

    if settings.WINGMAN.config_path is None:
        print("wingman: no wingman.config.json (use --config or wingman init)", file=sys.stderr)
        return EXIT_FAIL
    try:
        agents_config_check(settings.WINGMAN.raw)  # before the database is even created
        migrate_once()
        result = agents_import(settings.WINGMAN.raw, update_existing=True)
    except ConfigImportError as exc:
        print(f"wingman: config error: {exc}", file=sys.stderr)
        return 2
    print(f"Imported from {settings.WINGMAN.config_path}: {result}")
    return EXIT_OK


def cmd_agents_list(args: argparse.Namespace) -> int:
    from agents.selectors import agent_list
    from wingman.schema import migrate_once

    migrate_once()
    for agent in agent_list():
        flag = " (default)" if agent["default"] else ""
        model = agent["model"] or "default model"
        print(f"{agent['id']}{flag}: {agent['name']} — {model}")
    return EXIT_OK
