"""The gateway under daphne: our WebSocket protocol (any close code, direct writes), signal
handling, drain and listening line (``gateway/server/serve.py`` has the guarantees both
servers keep). Imported only when daphne is chosen: importing daphne's server installs
Twisted's asyncio reactor."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from daphne.server import Server  # installs the asyncio reactor: import first
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.tcp import Connection as TcpConnection

from gateway.server import common
from gateway.ws.writer import (
    FRAMES_SCOPE_KEY,
    SLOW_CONSUMER_ABORT_SECONDS,
    SOCKET_SCOPE_KEY,
    TwistedSocket,
    frame_head,
)

#: Frames of one socket waiting for the application above which it is not read...
INBOUND_QUEUE_HIGH = 64
#: ... and how often a paused socket checks whether the application caught up.
INBOUND_POLL_SECONDS = 0.002


def _quiet_autobahn() -> None:
    """autobahn formats its debug-log arguments even when debug logging is off (``hltype``
    per frame sent, ``pformat`` of ~40 options per connection): make those helpers free."""
    import txaio
    from autobahn.websocket import protocol as ab

    if txaio.get_global_log_level() in ("debug", "trace"):
        return
    pformat = ab.pformat
    ab.hltype = ab.hlval = _first_arg
    # the per-connection option list; anything else (e.g. ``Timings.__str__``) as before
    ab.pformat = lambda value: value if isinstance(value, list) else pformat(value)


def _first_arg(value, *_args, **_kwargs):
    return value


class GatewayWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol: any close code, direct writes, and a bounded inbound
    queue."""

    reading_paused = False

    def onMessage(self, payload, isBinary):
        """Queue the frame for the application; stop reading the socket while it is
        ``INBOUND_QUEUE_HIGH`` frames behind (daphne's queue is unbounded: a flood would
        otherwise be read and queued far ahead of the rate limit that closes it)."""
        super().onMessage(payload, isBinary)
        queue = getattr(self, "application_queue", None)
        if (
            not self.reading_paused
            and queue is not None
            and queue.qsize() >= INBOUND_QUEUE_HIGH
            and self.transport is not None
        ):
            self.reading_paused = True
            self.transport.pauseProducing()
            reactor.callLater(INBOUND_POLL_SECONDS, self._resume_reading, queue)

    def _resume_reading(self, queue) -> None:
        if not self.transport.connected:
            return
        if queue.qsize() >= INBOUND_QUEUE_HIGH // 2:
            reactor.callLater(INBOUND_POLL_SECONDS, self._resume_reading, queue)
            return
        self.reading_paused = False
        self.transport.resumeProducing()

    def serverClose(self, code=None):
        """Any valid close code (autobahn's ``sendClose`` only allows 1000/3000-4999)."""
        self.sendCloseFrame(code=1000 if code is None else code, isReply=False)

    def serverSend(self, content, binary=False):
        """Write the frame to the socket at once when nothing is queued before it.

        Twisted's ``write`` only buffers and registers the socket for writing, so every
        frame costs two epoll updates and a loop pass; autobahn adds its own per-frame
        work. This is asyncio's transport strategy: try ``send`` now, buffer the rest.
        (Outgoing frames are not limited by ``maxPayload``: it limits what clients send.)
        """
        t = self.transport
        if (
            self.state != self.STATE_OPEN
            or self._perMessageCompress is not None
            or self.send_queue
            or not isinstance(t, TcpConnection)
        ):
            return super().serverSend(content, binary)
        payload = content if binary else content.encode()
        head = frame_head(2 if binary else 1, len(payload))
        if (
            t.connected
            and not t._writeDisconnected
            and not t._tempDataBuffer
            and t.offset == len(t.dataBuffer)
        ):
            try:
                sent = t.socket.sendmsg((head, payload))
            except OSError:  # EAGAIN: buffer it; anything else: the reactor's write
                sent = 0  # finds the error again and drops the connection
            if sent == len(head) + len(payload):
                return None
            t.write((head + payload)[sent:])
            return None
        t.write(head + payload)
        return None


class GatewayServer(Server):
    """daphne with our listening line and the Control UI's second port."""

    def __init__(self, *, host: str, port: int, ui_port: int | None, pid_file, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gateway_host, self.gateway_port, self.ui_port = host, port, ui_port
        self.pid_file = pid_file
        self.listening: list = []
        self.exit_code = 0

    def create_application(self, protocol, scope):
        # The slow-consumer rules read the socket's write buffer through these.
        if scope.get("type") == "websocket":
            scope[FRAMES_SCOPE_KEY] = TwistedSocket(protocol.transport, protocol)
        elif getattr(protocol, "channel", None) is not None:  # an HTTP request
            scope[SOCKET_SCOPE_KEY] = TwistedSocket(protocol.channel.transport)
        return super().create_application(protocol, scope)

    def listen_success(self, port_obj):
        super().listen_success(port_obj)
        self.listening.append(port_obj)
        addr = port_obj.getHost()
        # TCP endpoints listen synchronously, in the order given: the gateway first.
        if len(self.listening) == 1:
            common.announce("daphne", addr.host, addr.port, self.pid_file)
        else:
            common.announce_ui(addr.host, addr.port)

    def listen_error(self, failure):
        if self.ui_port and getattr(failure.value, "port", None) == self.ui_port:
            common.cannot_listen_ui(self.gateway_host, self.ui_port, failure.getErrorMessage())
            return
        self.exit_code = common.cannot_listen(
            self.gateway_host, self.gateway_port, failure.getErrorMessage()
        )
        super().listen_error(failure)

    async def stop_listening(self) -> None:
        for port_obj in self.listening:
            await _deferred(port_obj.stopListening())

    def ready(self) -> None:
        """Called by daphne once the reactor runs."""
        _quiet_autobahn()
        self.ws_factory.protocol = GatewayWebSocketProtocol
        # A peer that leaves our close frame unanswered (e.g. a slow consumer closed 4008
        # with data still to read) is dropped after the slow-consumer grace, as on uvicorn,
        # not after autobahn's default 1 s.
        self.ws_factory.setProtocolOptions(
            failByDrop=False, closeHandshakeTimeout=SLOW_CONSUMER_ABORT_SECONDS
        )
        signals = common.Signals(
            lambda: common.drain(self.stop_listening, reactor.stop), reactor.stop
        )
        signals.install(reactor._asyncioEventloop)
        reactor.callWhenRunning(
            lambda: asyncio.ensure_future(common.process_started(), loop=reactor._asyncioEventloop)
        )


def serve(*, host: str, port: int, pid_file: Path | None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from wingman.asgi import application

    policy = common.policy()
    endpoint_host = host.replace(":", r"\:")
    ui_port = common.ui_port(port)
    tls_files = common.tls_files()
    kind = "tcp"
    if tls_files is not None:
        cert, key = (str(f).replace(":", r"\:") for f in tls_files)
        kind = f"ssl:privateKey={key}:certKey={cert}"
    endpoints = [
        f"{kind}:port={p}:interface={endpoint_host}:backlog={common.LISTEN_BACKLOG}"
        for p in (port, ui_port)
        if p is not None
    ]
    server = GatewayServer(
        host=host,
        port=port,
        ui_port=ui_port,
        pid_file=pid_file,
        application=application,
        endpoints=endpoints,
        signal_handlers=False,
        ping_interval=policy.ping_interval_ms / 1000,
        ping_timeout=policy.ping_timeout_ms / 1000,
        websocket_max_message_size=policy.max_payload,
        websocket_max_frame_size=policy.max_payload,
        websocket_handshake_timeout=10,
        application_close_timeout=5,
        ready_callable=lambda: server.ready(),
        server_name="wingman",
    )
    common.tune_gc()
    try:
        server.run()
    finally:
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    return server.exit_code


async def _deferred(d):
    """Await a Twisted Deferred (or a plain value) from asyncio."""
    if isinstance(d, Deferred):
        return await d.asFuture(asyncio.get_running_loop())
    return d
