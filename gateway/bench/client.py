"""One bench connection: websockets' Sans-I/O protocol driven from asyncio callbacks.

Each connection is a :class:`~websockets.client.ClientProtocol` fed straight from
:class:`asyncio.Protocol` callbacks: no task per socket, every frame is timestamped in
``data_received`` (``time.perf_counter``), and only the frames the bench needs are parsed
(a substring test on the head of the frame otherwise). The clients share the machine's CPU
with the server they measure, so the less they do the truer the figures.

A client speaks the canonical dialect (design/protocol.md): wait for ``connect.challenge``,
send ``connect``, wait for ``res ok:true``; then ``ping`` on request, and during a fan-out
round it timestamps the first event frame that contains the round's marker
(:class:`Observer`, implemented by ``measure.Run``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import WebSocketURI

from wingman.config import is_loopback

CLOSE_TIMEOUT = 5.0
#: hello-ok carries the presence snapshot: ~330 bytes per connected client.
MAX_MESSAGE = 64 * 2**20
#: How much of a frame's head is searched for its ``type`` / ``id`` / ``ok``.
_HEAD = 160
_EVENT = b'"type":"event"'
_RES = b'"type":"res"'
_OK = b'"ok":true'
_CHALLENGE = b'"connect.challenge"'


class BenchError(Exception):
    """The run itself failed (as opposed to a figure missing its target)."""


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and with which credentials (loopback only)."""

    url: str
    host: str
    port: int
    token: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str, *, token: str | None = None, password: str | None = None) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "ws":
            raise BenchError(f"the bench speaks plain ws:// to a local gateway, not {url!r}")
        host = parts.hostname or ""
        if not is_loopback(host):
            raise BenchError(
                f"the bench only measures a gateway on this machine (loopback), not {host!r}"
            )
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise BenchError(f"bad URL {url!r}: {exc}") from None
        return cls(url=url, host=host, port=port, token=token, password=password)


class Observer(Protocol):
    """What a client reads and reports during a fan-out round (``measure.Run``)."""

    endpoint: Endpoint
    uri: WebSocketURI
    #: Bytes that identify this round's event (the trigger's quoted instanceId), or None.
    watch: bytes | None
    #: The current round number; a client reports each round at most once.
    round: int

    def arrived(self, t: float) -> None: ...


class Client(asyncio.Protocol):
    """One bench connection; see the module docstring."""

    def __init__(self, run: Observer, instance_id: str, *, counted: bool = True) -> None:
        self.run = run
        self.instance_id = instance_id
        #: Counted in the fan-out (the N clients are; a trigger is not).
        self.counted = counted
        self.ws = ClientProtocol(run.uri, max_size=MAX_MESSAGE)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[float] = self.loop.create_future()
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.t_open = 0.0
        self.t_connect_sent = 0.0
        self.t_ready = 0.0
        #: The last fan-out round this client has seen its event for.
        self.seen = 0
        self._ping: tuple[bytes, asyncio.Future[float]] | None = None
        self._fragments: list[bytes] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a TCP transport
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter()
        ws = self.ws
        ws.receive_data(data)
        self._flush()  # pongs and close replies
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event, t)
            elif isinstance(event, Response) and ws.handshake_exc is not None:
                self._fail(f"WebSocket handshake refused: {ws.handshake_exc}")
        if ws.close_expected():
            self._abort_later()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        code = self.ws.close_rcvd.code if self.ws.close_rcvd else None
        reason = f"closed by the server (code {code})" if code else "connection lost"
        self._fail(f"{reason} before hello-ok")
        if self._ping is not None:
            _, fut = self._ping
            self._ping = None
            if not fut.done():
                fut.set_exception(BenchError(f"{reason} while waiting for a ping reply"))
        if not self.lost.done():
            self.lost.set_result(None)

    # frames ------------------------------------------------------------------------------
    def _frame(self, frame: Frame, t: float) -> None:
        op = frame.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if frame.fin:
                self._message(frame.data, t)
            else:
                self._fragments = [frame.data]
        elif op is Opcode.CONT and self._fragments is not None:
            self._fragments.append(frame.data)
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._message(data, t)

    def _message(self, data: bytes, t: float) -> None:
        head = data[:_HEAD]
        if _EVENT in head:
            if self.t_ready:
                run = self.run
                watch = run.watch
                if watch is not None and self.seen != run.round and watch in data:
                    self.seen = run.round
                    if self.counted:
                        run.arrived(t)
            elif not self.t_connect_sent and _CHALLENGE in head:
                self._send_connect()
            return
        if not self.t_ready:
            self._connect_reply(data, head, t)
        elif self._ping is not None and self._ping[0] in head:
            _, fut = self._ping
            self._ping = None
            if _RES in head and _OK in head:
                fut.set_result(t)
            else:
                fut.set_exception(BenchError(f"ping refused: {_error_of(data)}"))

    def _connect_reply(self, data: bytes, head: bytes, t: float) -> None:
        if not (_RES in head and _OK in head):  # not the fast path: look properly
            frame = _loads(data)
            if frame.get("type") == "event":  # fields in another order than the gateway's
                if frame.get("event") == "connect.challenge" and not self.t_connect_sent:
                    self._send_connect()
                return
            if not (frame.get("type") == "res" and frame.get("ok") is True):
                self._fail(f"connect refused: {_error_of(data)}")
                return
        self.t_ready = t
        if not self.ready.done():
            self.ready.set_result(t)

    # sending -----------------------------------------------------------------------------
    def _send_connect(self) -> None:
        endpoint = self.run.endpoint
        client = {"id": "bench", "version": "1", "mode": "probe", "instanceId": self.instance_id}
        params: dict[str, Any] = {"minProtocol": 3, "maxProtocol": 4, "client": client}
        if endpoint.token is not None:
            params["auth"] = {"token": endpoint.token}
        elif endpoint.password is not None:
            params["auth"] = {"password": endpoint.password}
        frame = {"type": "req", "id": "c", "method": "connect", "params": params}
        self.t_connect_sent = time.perf_counter()
        self._send(frame)

    def send_ping(self, k: int) -> tuple[float, asyncio.Future[float]]:
        """Send ``ping`` number ``k``: (the time it was sent, the future of the reply's time)."""
        rid = f"p{k}"
        fut: asyncio.Future[float] = self.loop.create_future()
        self._ping = (f'"id":"{rid}"'.encode(), fut)
        t = time.perf_counter()
        self._send({"type": "req", "id": rid, "method": "ping"})
        return t, fut

    def _send(self, frame: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(frame, separators=(",", ":")).encode())
        self._flush()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            self.ws.data_to_send()  # discard
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()

    # closing -----------------------------------------------------------------------------
    def close(self) -> None:
        """Start a clean close (close frame); abort if the server does not finish it."""
        if self.transport is None or self.transport.is_closing():
            if not self.lost.done():
                self.lost.set_result(None)
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self._flush()
            self._abort_later()
        else:
            self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        elif not self.lost.done():
            self.lost.set_result(None)

    def _abort_later(self) -> None:
        if self._abort_timer is None and self.transport is not None:
            self._abort_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    def _fail(self, message: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(BenchError(message))
            self.ready.exception()  # whoever awaits it still gets it; nobody may (a late loss)
            if self.transport is not None:
                self.transport.abort()


def _loads(data: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(data)
    except ValueError:
        return {}
    return frame if isinstance(frame, dict) else {}


def _error_of(data: bytes) -> str:
    """A one-line description of an error reply (or of an unexpected frame)."""
    error = _loads(data).get("error")
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    text = data[:120].decode("utf-8", "replace")
    return f"unexpected frame {text!r}"
