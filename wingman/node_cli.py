"""``wingman gateway join <url>`` (or ``--auto-discover``): this project's own swarm node
(wingman-node dialect).

With ``--auto-discover`` it browses mDNS (``_wingman-gateway._tcp.local.``, the browse of
``wingman gateway discover``) for up to ``--timeout`` ms and joins the first gateway found.
It connects over a WebSocket, or over the HTTP bridge (``--transport http``, or by itself
when a proxy refuses the upgrade: ``--auto-transport``, the default), speaking the same
frames either way (``wingman.client.open_socket``).

It registers (``register {name, capabilities, token|password}``), joins its groups
(``join_group {groupName, createIfNotExists}``), prints what it receives, answers the
gateway's ``ping`` with ``pong`` and pings every ``--ping-interval`` seconds. When the
connection drops it reconnects with backoff (0.5 s doubling to 10 s) and registers and
joins again. Lines on stdin are sent:

- ``<text>``: a broadcast ``{"type":"message","content":<text>}`` to every joined group;
- ``/direct <nodeId> <text>``: a direct message;
- ``/join <group>``, ``/leave <group>``, ``/quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import stat
import sys
import time
from typing import Any

from wingman.agent_cli import add_transport_arguments

# ``websockets`` and ``wingman.client`` (httpx) are imported where a node connects: every
# ``wingman`` command builds this one's flags, and they cost ~0.4 s at each start.

EXIT_FAIL = 1
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0


#: How each transport is named in the "connected" line.
TRANSPORT_NAMES = {"websocket": "WebSocket", "http": "the HTTP bridge"}


def add_join_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Join a gateway as a swarm node (wingman-node dialect), join --group(s) and print "
        "what arrives; stdin lines are broadcast (/direct <nodeId> <text>, /join, /leave, "
        "/quit). --auto-discover finds the gateway over mDNS instead of a URL (exit 3 when "
        "none answers within --timeout). Over WebSocket, else the HTTP bridge."
    )
    p.add_argument(
        "url", nargs="?", help="gateway URL, e.g. ws://host:18789/ws (or --auto-discover)"
    )
    p.add_argument(
        "--auto-discover",
        action="store_true",
        help="find the gateway over mDNS (_wingman-gateway._tcp.local.) and join the first "
        "one found",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=5000,
        help="--auto-discover: milliseconds to browse for (default 5000)",
    )
    p.add_argument("--name", default=None, help="node name (default: this host's name)")
    p.add_argument("--token", default=None, help="gateway token (default WINGMAN_GATEWAY_TOKEN)")
    p.add_argument(
        "--password",
        default=None,
        help="gateway password, for a gateway in password mode (default WINGMAN_GATEWAY_PASSWORD)",
    )
    p.add_argument(
        "--group",
        action="append",
        default=[],
        help="group to join (created if missing; repeatable)",
    )
    p.add_argument(
        "--capability", action="append", default=[], help="a capability to advertise (repeatable)"
    )
    p.add_argument(
        "--ping-interval", type=float, default=30.0, help="seconds between pings (default 30)"
    )
    add_transport_arguments(p)
    p.set_defaults(func=cmd_join, needs_django=False)


def _out(line: str) -> None:
    print(line, flush=True)


def _now() -> int:
    return int(time.time() * 1000)


class Node:
    """One node: its connection (re-made after a drop), its id and its groups."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url = args.url
        self.transport = args.transport
        self.tls_fingerprint = args.tls_fingerprint
        self.name = args.name or socket.gethostname()
        self.token = args.token or os.environ.get("WINGMAN_GATEWAY_TOKEN")
        self.password = args.password or os.environ.get("WINGMAN_GATEWAY_PASSWORD")
        self.capabilities = list(args.capability)
        self.groups: dict[str, str] = {}  # name -> id
        self.wanted = list(dict.fromkeys(args.group))
        self.ping_interval = args.ping_interval
        self.node_id: str | None = None
        self.ws: Any = None
        self.stopped = False
        self.exit_code = 0

    async def send(self, frame: dict[str, Any]) -> None:
        if self.ws is None:
            _out("not connected: dropped")
            return
        await self.ws.send(json.dumps({**frame, "timestamp": _now()}))

    async def run(self) -> int:
        import websockets

        backoff = BACKOFF_START
        stdin = asyncio.create_task(self._stdin())
        try:
            while not self.stopped:
                try:
                    if await self._connection():
                        backoff = BACKOFF_START
                except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                    _out(f"connection failed: {exc}")
                if self.stopped:
                    break
                _out(f"reconnecting in {backoff:g} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            stdin.cancel()
        return self.exit_code

    async def _connection(self) -> bool:
        """One connection (WebSocket or bridge session) from open to close; True if the node
        registered on it."""
        from wingman.client import open_socket

        ws, used = await open_socket(
            self.url, transport=self.transport, tls_fingerprint=self.tls_fingerprint
        )
        self.ws = ws
        if self.stopped:  # /quit came while connecting
            await ws.close()
            return False
        _out(f"connected to {self.url} over {TRANSPORT_NAMES[used]}")
        try:
            return await self._session(ws)
        finally:
            self.ws = None
            await ws.close()

    async def _session(self, ws) -> bool:
        """Register, join, then print what arrives until the socket closes. True if it
        registered (the backoff starts over)."""
        import websockets

        payload: dict[str, Any] = {"name": self.name}
        if self.capabilities:
            payload["capabilities"] = self.capabilities
        if self.token:
            payload["token"] = self.token
        if self.password:
            payload["password"] = self.password
        await self.send({"type": "register", "payload": payload})
        pinger = asyncio.create_task(self._ping())
        try:
            async for text in ws:
                await self._received(json.loads(text))
            code = ws.close_code
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "no close frame"
        finally:
            pinger.cancel()
        _out(f"disconnected: {code}")
        registered, self.node_id = self.node_id is not None, None
        return registered

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            await self.send({"type": "ping", "nodeId": self.node_id})

    async def _received(self, frame: dict[str, Any]) -> None:
        kind, payload = frame.get("type"), frame.get("payload")
        if (
            kind == "ack"
            and isinstance(payload, dict)
            and "name" in payload
            and "nodeId" in payload
        ):
            self.node_id = payload["nodeId"]
            _out(f"registered as {payload['name']} (nodeId {self.node_id})")
            for group in self.wanted:
                await self.join(group)
        elif kind == "ack" and isinstance(payload, dict) and "groupName" in payload:
            self.groups[payload["groupName"]] = payload["groupId"]
            _out(f"joined group {payload['groupName']} (groupId {payload['groupId']})")
        elif kind == "ping":
            await self.send({"type": "pong", "nodeId": self.node_id})
        elif kind == "broadcast":
            body = json.dumps(payload, ensure_ascii=False)
            _out(f"broadcast from {frame.get('nodeId')} in {frame.get('groupId')}: {body}")
        elif kind == "direct":
            _out(f"direct from {frame.get('nodeId')}: {json.dumps(payload, ensure_ascii=False)}")
        elif kind == "error":
            _out(f"error {payload.get('code')}: {payload.get('message')}")
            if payload.get("code") == "AUTH_FAILED" and self.node_id is None:
                # a refused credential does not get better by retrying it
                print(
                    "wingman: the gateway refused this node's credentials (AUTH_FAILED): "
                    "check --token / --password",
                    file=sys.stderr,
                    flush=True,
                )
                self.stopped, self.exit_code = True, EXIT_FAIL
        elif kind == "ack" and isinstance(payload, dict) and payload.get("left"):
            _out(f"left group {payload.get('groupId')}")

    async def join(self, group: str) -> None:
        payload = {"groupName": group, "createIfNotExists": True}
        await self.send({"type": "join_group", "nodeId": self.node_id, "payload": payload})

    async def command(self, line: str) -> None:
        """One stdin line (see the module docstring)."""
        if line == "/quit":
            self.stopped = True
            if self.ws is not None:
                await self.ws.close()
        elif line.startswith("/direct "):
            _, target, *rest = line.split(" ", 2)
            message = {"type": "message", "content": rest[0] if rest else ""}
            payload = {"targetNodeId": target, "message": message}
            await self.send({"type": "direct", "nodeId": self.node_id, "payload": payload})
        elif line.startswith("/join "):
            group = line[6:].strip()
            self.wanted.append(group)
            await self.join(group)
        elif line.startswith("/leave "):
            group = line[7:].strip()
            self.wanted = [g for g in self.wanted if g != group]
            gid = self.groups.pop(group, group)
            await self.send(
                {"type": "leave_group", "nodeId": self.node_id, "payload": {"groupId": gid}}
            )
        elif line:
            for gid in self.groups.values():
                payload = {"groupId": gid, "message": {"type": "message", "content": line}}
                await self.send({"type": "broadcast", "nodeId": self.node_id, "payload": payload})

    async def _stdin(self) -> None:
        try:
            fd = sys.stdin.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):
            return  # no stdin at all: nothing to send
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
            # a file or /dev/null (a service's stdin), which the event loop cannot watch
            while line := await asyncio.to_thread(sys.stdin.readline):
                with contextlib.suppress(Exception):
                    await self.command(line.strip())
            return
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        except (OSError, ValueError):
            return  # no readable stdin: nothing to send
        while not reader.at_eof():
            line = await reader.readline()
            if line:
                with contextlib.suppress(Exception):
                    await self.command(line.decode(errors="replace").strip())


def cmd_join(args: argparse.Namespace) -> int:
    """Run the node until ``/quit`` or Ctrl-C (after finding the gateway, if asked to)."""
    if bool(args.url) == args.auto_discover:
        print("wingman: give the gateway's URL or --auto-discover (one of them)", file=sys.stderr)
        return 2
    if args.auto_discover:
        failed = _auto_discover(args)
        if failed is not None:
            return failed
    return asyncio.run(Node(args).run())


def _auto_discover(args: argparse.Namespace) -> int | None:
    """Point ``args.url`` at the first gateway mDNS finds; None, or the exit code."""
    from wingman.discovery_cli import EXIT_NONE_FOUND

    if args.timeout <= 0:
        print("wingman: --timeout must be a positive number of milliseconds", file=sys.stderr)
        return 2
    from gateway.discovery.mdns import browse

    found = asyncio.run(browse(args.timeout / 1000, first=True))
    if not found:
        print(
            f"wingman: no gateway found over mDNS within {args.timeout} ms "
            "(is one running with discovery on, on this network?); give its URL instead",
            file=sys.stderr,
        )
        return EXIT_NONE_FOUND
    g = found[0]
    auth = f"auth required ({g.auth})" if g.auth_required else "no auth"
    _out(f"discovered gateway {g.name} at {g.url} ({auth})")
    given = (
        args.token,
        args.password,
        os.environ.get("WINGMAN_GATEWAY_TOKEN"),
        os.environ.get("WINGMAN_GATEWAY_PASSWORD"),
    )
    if g.auth_required and not any(given):
        flag = (
            "--password or set WINGMAN_GATEWAY_PASSWORD"
            if g.auth == "password"
            else ("--token or set WINGMAN_GATEWAY_TOKEN")
        )
        print(
            f"wingman: gateway {g.name} at {g.url} requires auth ({g.auth}): pass {flag}",
            file=sys.stderr,
        )
        return EXIT_FAIL
    args.url = g.url
    return None
