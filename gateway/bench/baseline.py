"""A minimal pure-``websockets`` server speaking the bench's subset of the canonical dialect.

The bench starts it as ``python -m gateway.bench.baseline --port 0`` (credentials in the
``WINGMAN_BENCH_TOKEN`` / ``WINGMAN_BENCH_PASSWORD`` environment variables, never argv); it
prints ``Baseline listening on ws://127.0.0.1:PORT/`` and serves until SIGTERM/SIGINT (or,
with ``--exit-on-stdin-eof`` as the bench passes it, until its stdin closes, so it never
outlives the bench).

It does what design/protocol.md asks of the gateway for this subset, the cheapest way:

- on open, the ``connect.challenge`` event;
- ``connect`` → ``res ok:true`` hello-ok *with* the presence snapshot (the protocol's
  hello-ok carries it, so both servers send the same bytes and the connect ratio compares
  implementations, not payloads; ``--small-hello`` leaves it empty, for comparing against
  a server that does not send it); bad credentials → ``ok:false UNAUTHORIZED``, close 1008;
- ``ping`` → ``{pong:true, ts}``;
- a ``presence`` event to every established connection whenever a client connects or
  leaves, coalesced like gateway/delivery/hub.py (the first change at once, then 200 ms windows),
  serialised once with each connection's ``seq`` spliced in.

No Django, no channel layer, no cache, no rate limit, no pydantic: keep it that way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import resource
import secrets
import signal
import sys
import threading
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

TOKEN_ENV = "WINGMAN_BENCH_TOKEN"  # noqa: S105 - a variable name, not a secret
PASSWORD_ENV = "WINGMAN_BENCH_PASSWORD"  # noqa: S105
#: Same as gateway/delivery/hub.py PRESENCE_COALESCE_SECONDS.
COALESCE_SECONDS = 0.2
HANDSHAKE_TIMEOUT = 10.0
MAX_PAYLOAD = 512 * 1024
LISTEN_BACKLOG = 2048  # as gateway/server/serve.py
LISTENING = "Baseline listening on ws://{host}:{port}/"


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def now_ms() -> int:
    return int(time.time() * 1000)


def raise_open_file_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Peer:
    """An established connection."""

    __slots__ = ("conn_id", "entry", "seq", "ws")

    def __init__(self, ws: ServerConnection, conn_id: str, entry: dict[str, Any]) -> None:
        self.ws = ws
        self.conn_id = conn_id
        self.entry = entry
        self.seq = 0


class Baseline:
    """The server state: established peers and the pending presence delta."""

    def __init__(self, *, token: str | None, password: str | None, snapshot: bool = True) -> None:
        self.token = token
        self.password = password
        self.snapshot = snapshot
        self.started = time.monotonic()
        self.peers: dict[str, Peer] = {}
        self.version = 0
        self._pending: list[dict[str, Any]] = []
        self._flush: asyncio.TimerHandle | None = None
        self._last_flush = 0.0

    async def handler(self, ws: ServerConnection) -> None:
        """One socket, from challenge to close."""
        challenge = {"nonce": secrets.token_urlsafe(16), "ts": now_ms()}
        with contextlib.suppress(ConnectionClosed):
            await ws.send(
                dumps({"type": "event", "event": "connect.challenge", "payload": challenge})
            )
            try:
                first = await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT)
            except TimeoutError:
                await ws.close(4408)
                return
            peer = await self._handshake(ws, first)
            if peer is None:
                return
            try:
                async for message in ws:
                    await self._request(ws, message)
            finally:
                self._leave(peer)

    async def _handshake(self, ws: ServerConnection, message: str | bytes) -> Peer | None:
        frame = _loads(message)
        rid = frame.get("id") if isinstance(frame.get("id"), str) else "invalid"
        params = frame.get("params") if isinstance(frame.get("params"), dict) else {}
        if frame.get("type") != "req" or frame.get("method") != "connect":
            await ws.close(1008)
            return None
        if not self._authorized(params.get("auth")):
            error = {"code": "UNAUTHORIZED", "message": "unauthorized"}
            await ws.send(dumps({"type": "res", "id": rid, "ok": False, "error": error}))
            await ws.close(1008)
            return None
        peer = self._establish(ws, params)
        await ws.send(self._hello_ok(rid, peer, params))
        self._changed({**peer.entry, "reason": "connect"})
        return peer

    def _authorized(self, auth: Any) -> bool:
        auth = auth if isinstance(auth, dict) else {}
        for expected, given in (
            (self.token, auth.get("token")),
            (self.password, auth.get("password")),
        ):
            if expected is not None:
                return isinstance(given, str) and hmac.compare_digest(given, expected)
        return True

    def _establish(self, ws: ServerConnection, params: dict[str, Any]) -> Peer:
        client = params.get("client") if isinstance(params.get("client"), dict) else {}
        conn_id = secrets.token_hex(6)
        now = now_ms()
        entry = {
            "connId": conn_id,
            "host": client.get("displayName") or client.get("id"),
            "ip": (ws.remote_address or ("?",))[0],
            "version": client.get("version"),
            "mode": client.get("mode"),
            "role": params.get("role") or "operator",
            "clientId": client.get("id"),
            "instanceId": client.get("instanceId"),
            "dialect": "canonical",
            "connectedAt": now,
            "ts": now,
        }
        peer = Peer(ws, conn_id, {k: v for k, v in entry.items() if v is not None})
        self.peers[conn_id] = peer
        return peer

    def _hello_ok(self, rid: str, peer: Peer, params: dict[str, Any]) -> str:
        max_protocol = params.get("maxProtocol")
        protocol = min(max_protocol, 4) if isinstance(max_protocol, int) else 4
        sv = {"presence": self.version, "health": 1}
        uptime = int((time.monotonic() - self.started) * 1000)
        payload = {
            "type": "hello-ok",
            "protocol": protocol,
            "server": {"version": "baseline", "host": "baseline", "connId": peer.conn_id},
            "features": {"methods": ["ping"], "events": ["connect.challenge", "presence"]},
            "snapshot": {
                "presence": [p.entry for p in self.peers.values()] if self.snapshot else [],
                "health": {"ok": True, "connections": len(self.peers)},
                "stateVersion": sv,
                "uptimeMs": uptime,
            },
            "policy": {"maxPayload": MAX_PAYLOAD, "tickIntervalMs": 30_000},
        }
        return dumps({"type": "res", "id": rid, "ok": True, "payload": payload})

    async def _request(self, ws: ServerConnection, message: str | bytes) -> None:
        frame = _loads(message)
        rid = frame.get("id") if isinstance(frame.get("id"), str) else "invalid"
        if frame.get("type") == "req" and frame.get("method") == "ping":
            reply = {
                "type": "res",
                "id": rid,
                "ok": True,
                "payload": {"pong": True, "ts": now_ms()},
            }
        else:
            error = {"code": "INVALID_REQUEST", "message": "the baseline only answers ping"}
            reply = {"type": "res", "id": rid, "ok": False, "error": error}
        await ws.send(dumps(reply))

    def _leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.conn_id, None) is not None:
            self._changed({**peer.entry, "reason": "disconnect", "ts": now_ms()})

    # presence: the same coalescing as gateway/delivery/hub.py ------------------------------------
    def _changed(self, change: dict[str, Any]) -> None:
        self._pending.append(change)
        if self._flush is not None:
            return
        since = time.monotonic() - self._last_flush
        delay = 0.0 if since >= COALESCE_SECONDS else COALESCE_SECONDS - since
        self._flush = asyncio.get_running_loop().call_later(delay, self._publish)

    def _publish(self) -> None:
        self._flush = None
        changes, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        if not changes:
            return
        self.version += 1
        sv = dumps({"presence": self.version, "health": 1})
        payload = dumps({"entries": changes, "stateVersion": json.loads(sv)})
        head = f'{{"type":"event","event":"presence","payload":{payload},"stateVersion":{sv},"seq":'
        for peer in list(self.peers.values()):
            peer.seq += 1
            broadcast((peer.ws,), f"{head}{peer.seq}}}")


def _loads(message: str | bytes) -> dict[str, Any]:
    try:
        frame = json.loads(message)
    except ValueError:
        return {}
    return frame if isinstance(frame, dict) else {}


async def serve_until_stopped(port: int, baseline: Baseline, *, stdin_eof: bool = False) -> None:
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)

    def watch_stdin() -> None:  # EOF: the bench that started us is gone
        with contextlib.suppress(OSError):  # os.read: no buffer lock held at shutdown
            while os.read(0, 4096):
                pass
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(request_stop)

    async with serve(
        baseline.handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=MAX_PAYLOAD,
        backlog=LISTEN_BACKLOG,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(LISTENING.format(host="127.0.0.1", port=bound), flush=True)
        if stdin_eof:
            threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.bench.baseline",
        description="Minimal pure-websockets server for `wingman gateway bench` (127.0.0.1 only).",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--small-hello", action="store_true", help="no presence snapshot in hello-ok"
    )
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (the bench's pipe)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_open_file_limit()
    baseline = Baseline(
        token=os.environ.get(TOKEN_ENV) or None,
        password=os.environ.get(PASSWORD_ENV) or None,
        snapshot=not args.small_hello,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped(args.port, baseline, stdin_eof=args.exit_on_stdin_eof))


if __name__ == "__main__":
    main()
