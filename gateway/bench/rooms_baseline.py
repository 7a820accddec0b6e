"""A minimal pure-``websockets`` server speaking the wingman-node subset the rooms bench uses
(``python -m gateway.bench.rooms_baseline --port 0``; token in ``WINGMAN_BENCH_TOKEN``).

- on open, the ``connect.challenge`` event (as the gateway sends to every socket);
- ``register {name, token}`` → ``ack {nodeId, name}`` (bad token: ``error AUTH_FAILED``,
  close 1008);
- ``join_group {groupName, createIfNotExists}`` → ``ack {groupId, groupName}``;
- ``broadcast {groupId, message}`` → ``ack`` to the sender, and ``{"type":"broadcast",
  "nodeId","groupId","payload","timestamp"}`` serialised once and sent to every other member;
- ``ping`` → ``pong``; ``pong`` → nothing.

Groups live in memory; nothing is stored, there is no rate limit, no history, no agents.
No Django, no channel layer, no pydantic: keep it that way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from gateway.bench.baseline import (
    TOKEN_ENV,
    _loads,
    dumps,
    now_ms,
    raise_open_file_limit,
    serve_until_stopped,
)


class RoomsBaseline:
    """Nodes and groups in memory (see the module docstring)."""

    def __init__(self, *, token: str | None) -> None:
        self.token = token
        self.groups: dict[str, set[ServerConnection]] = {}
        self.names: dict[str, str] = {}

    async def handler(self, ws: ServerConnection) -> None:
        challenge = {"nonce": secrets.token_urlsafe(16), "ts": now_ms()}
        await ws.send(dumps({"type": "event", "event": "connect.challenge", "payload": challenge}))
        node_id: str | None = None
        joined: list[str] = []
        try:
            async for message in ws:
                frame = _loads(message)
                if node_id is None:
                    node_id = await self._register(ws, frame)
                    if node_id is None:
                        return
                    continue
                await self._frame(ws, node_id, frame, joined)
        except ConnectionClosed:
            pass
        finally:
            for gid in joined:
                self.groups.get(gid, set()).discard(ws)

    async def _register(self, ws: ServerConnection, frame: dict[str, Any]) -> str | None:
        payload = frame.get("payload") or {}
        if frame.get("type") != "register" or not self._authorized(payload.get("token")):
            error = {"code": "AUTH_FAILED", "message": "authentication failed"}
            await ws.send(dumps({"type": "error", "payload": error, "timestamp": now_ms()}))
            await ws.close(1008)
            return None
        node_id = secrets.token_hex(8)
        ack = {"nodeId": node_id, "name": payload.get("name")}
        await ws.send(
            dumps({"type": "ack", "nodeId": node_id, "payload": ack, "timestamp": now_ms()})
        )
        return node_id

    def _authorized(self, token: Any) -> bool:
        if not self.token:
            return True
        return isinstance(token, str) and hmac.compare_digest(token, self.token)

    async def _frame(self, ws, node_id: str, frame: dict[str, Any], joined: list[str]) -> None:
        kind, payload = frame.get("type"), frame.get("payload") or {}
        if kind == "broadcast":
            gid = payload.get("groupId")
            members = self.groups.get(gid)
            if members is None:
                error = {"code": "GROUP_NOT_FOUND", "message": f"group not found: {gid}"}
                await ws.send(dumps({"type": "error", "payload": error}))
                return
            out = dumps(
                {
                    "type": "broadcast",
                    "nodeId": node_id,
                    "groupId": gid,
                    "payload": payload.get("message"),
                    "timestamp": now_ms(),
                }
            )
            broadcast([m for m in members if m is not ws], out)
            ack = {"groupId": gid}
            await ws.send(dumps({"type": "ack", "nodeId": node_id, "groupId": gid, "payload": ack}))
        elif kind == "join_group":
            name = payload.get("groupName") or payload.get("groupId")
            gid = self.names.setdefault(name, secrets.token_hex(8))
            self.groups.setdefault(gid, set()).add(ws)
            joined.append(gid)
            ack = {"groupId": gid, "groupName": name}
            await ws.send(dumps({"type": "ack", "nodeId": node_id, "groupId": gid, "payload": ack}))
        elif kind == "ping":
            await ws.send(dumps({"type": "pong", "timestamp": now_ms()}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.bench.rooms_baseline",
        description="Minimal pure-websockets node server for `wingman gateway bench --mode rooms`.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (the bench's pipe)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_open_file_limit()
    server = RoomsBaseline(token=os.environ.get(TOKEN_ENV) or None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(args.port, server, stdin_eof=args.exit_on_stdin_eof))


if __name__ == "__main__":
    main()
