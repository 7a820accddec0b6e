"""``wingman gateway tunnel``: reach a gateway through SSH (wingman/tunnel.py does the ssh).

- ``tunnel user@host``: forward the remote gateway (its ``--port``, default 18789, on the
  remote loopback) to a local port, wait until it answers, connect through it (the
  handshake, shown in the remote gateway's presence under ``--name``) and hold the tunnel
  until Ctrl+C.
- ``tunnel reverse user@host``: expose the local gateway on the remote host's loopback
  (``--remote-port``, default the gateway port) until Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from wingman.tunnel import Tunnel, TunnelError, free_local_port, health

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_PORT = 18789
#: How long closing the connection through the tunnel may take when it is closed.
CLOSE_SECONDS = 3.0


def add_tunnel_command(sub: argparse._SubParsersAction) -> None:
    """Register ``gateway tunnel``."""
    p = sub.add_parser(
        "tunnel",
        help="SSH tunnel to a remote gateway (or `tunnel reverse`: expose this one)",
        description="Forward: `wingman gateway tunnel user@host` forwards the remote "
        "gateway to a local port (ssh -N -L), waits until it answers, connects through it and "
        "holds the tunnel until Ctrl+C. Reverse: `wingman gateway tunnel reverse user@host` "
        "exposes the local gateway on the remote host's loopback (ssh -N -R). Uses the system "
        "ssh client with your keys / SSH agent (never asks for a password).",
    )
    p.add_argument(
        "target", metavar="user@host", help="the SSH host (`reverse user@host`: reverse tunnel)"
    )
    p.add_argument("reverse_target", nargs="?", metavar="", help=argparse.SUPPRESS)
    p.add_argument(
        "--port",
        type=int,
        help="gateway port (forward: on the remote host, default 18789; "
        "reverse: the local gateway, default from config)",
    )
    p.add_argument(
        "--local-port", type=int, help="forward: local port (default --port if free, else any)"
    )
    p.add_argument(
        "--remote-port",
        type=int,
        help="reverse: port on the remote host (default --port; 0 = any, printed)",
    )
    p.add_argument("--ssh-port", type=int, help="SSH port of the host (default 22 / ssh config)")
    p.add_argument("--identity", "-i", help="private key file (default: ssh-agent / ~/.ssh)")
    p.add_argument(
        "--ssh-option",
        "-o",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra ssh -o option, repeatable (e.g. StrictHostKeyChecking=accept-new)",
    )
    p.add_argument("--name", help="forward: node name shown in the remote gateway's presence")
    p.add_argument("--token", help="gateway token (default WINGMAN_GATEWAY_TOKEN / config)")
    p.add_argument("--password", help="gateway password")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to come up (default 20)")
    p.set_defaults(func=cmd_tunnel)


def _parse_target(first: str, second: str | None) -> tuple[bool, str] | None:
    """(reverse?, user@host) from ``user@host`` or ``reverse user@host``; None if neither."""
    if second is None and first != "reverse":
        return False, first
    if second is not None and first == "reverse":
        return True, second
    return None


def cmd_tunnel(args: argparse.Namespace) -> int:
    """Set up the tunnel, then hold it until Ctrl+C / SIGTERM; never leaves ssh behind."""
    parsed = _parse_target(args.target, args.reverse_target)
    if parsed is None:
        print("usage: wingman gateway tunnel [reverse] user@host [options]", file=sys.stderr)
        return EXIT_USAGE
    reverse, target = parsed
    signal.signal(signal.SIGTERM, _raise_interrupt)
    tunnel = _reverse_tunnel(args, target) if reverse else _forward_tunnel(args, target)
    if isinstance(tunnel, int):
        return tunnel
    try:
        tunnel.start(timeout=args.timeout)
        if reverse:
            return _hold_reverse(tunnel)
        return asyncio.run(_hold_forward(tunnel, args))
    except TunnelError as exc:
        print(f"wingman: tunnel failed: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("Tunnel closed.", flush=True)
        return EXIT_INTERRUPTED
    finally:
        tunnel.stop()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _common(args: argparse.Namespace, target: str, **kw: Any) -> Tunnel:
    return Tunnel(
        target=target,
        ssh_port=args.ssh_port,
        identity=args.identity,
        options=list(args.ssh_option),
        ssh=os.environ.get("WINGMAN_SSH", "ssh"),
        **kw,
    )


def _forward_tunnel(args: argparse.Namespace, target: str) -> Tunnel | int:
    remote = args.port or DEFAULT_PORT
    local = args.local_port
    if local is None:
        local = remote if _port_free(remote) else free_local_port()
    elif not _port_free(local):
        print(f"wingman: local port {local} is already in use", file=sys.stderr)
        return EXIT_FAIL
    return _common(args, target, remote_port=remote, local_port=local)


def _reverse_tunnel(args: argparse.Namespace, target: str) -> Tunnel | int:
    from django.conf import settings

    local = args.port or settings.WINGMAN.port
    if health(f"http://127.0.0.1:{local}") is None:
        print(
            f"wingman: no gateway answers on 127.0.0.1:{local} (start it first, or --port)",
            file=sys.stderr,
        )
        return EXIT_FAIL
    remote = local if args.remote_port is None else args.remote_port
    return _common(args, target, remote_port=remote, local_port=local, reverse=True)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _hold_reverse(tunnel: Tunnel) -> int:
    host = tunnel.target.rsplit("@", 1)[-1]
    print(
        f"Reverse tunnel up: the local gateway (127.0.0.1:{tunnel.local_port}) is reachable on "
        f"{host} at ws://127.0.0.1:{tunnel.remote_port}/ws. Ctrl+C closes it.",
        flush=True,
    )
    if tunnel.proc is not None:
        tunnel.proc.wait()
    print(f"wingman: tunnel failed: {tunnel.failure()}", file=sys.stderr)
    return EXIT_FAIL


async def _hold_forward(tunnel: Tunnel, args: argparse.Namespace) -> int:
    from wingman.client import GatewayCallError, GatewayClient

    token, password = _credentials(args)
    client = GatewayClient(
        tunnel.url, token=token, password=password, client_id="wingman-tunnel", mode="node"
    )
    if args.name:
        client.client["displayName"] = args.name
    try:
        hello = await client.connect()
    except GatewayCallError as exc:
        print(f"wingman: tunnel is up but the gateway refused: {exc}", file=sys.stderr)
        return EXIT_FAIL
    server = hello.get("server", {})
    print(
        f"Tunnel up: {tunnel.target} gateway '{server.get('host')}' (version "
        f"{server.get('version')}) at {tunnel.url}; connected through it. Ctrl+C closes it.",
        flush=True,
    )
    try:
        while tunnel.alive():  # noqa: ASYNC110 - ssh is a child process: polled, no event
            await asyncio.sleep(0.2)
    finally:
        # bounded: Ctrl+C must close the tunnel at once, even when the gateway's answer to
        # the WebSocket close never comes back through it
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), CLOSE_SECONDS)
    print(f"wingman: tunnel failed: {tunnel.failure()}", file=sys.stderr)
    return EXIT_FAIL


def _credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    from django.conf import settings

    cfg = settings.WINGMAN
    token = args.token or os.environ.get("WINGMAN_GATEWAY_TOKEN") or cfg.token
    password = args.password or os.environ.get("WINGMAN_GATEWAY_PASSWORD")
    return token, password
