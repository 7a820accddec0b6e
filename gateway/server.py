"""Runs the ASGI app under uvicorn or daphne with the gateway's policy and a graceful SIGTERM.

The ASGI server is a setting, not an architecture (design/performance.md):
``WINGMAN_ASGI_SERVER`` / ``--server`` / ``gateway.asgiServer`` picks ``uvicorn`` (the
default: same fan-out, ~24 MB smaller, see README "Benchmark") or ``daphne``. Both keep the
same guarantees:

- the application may close with any valid code (1008, 1009, 1012, 4029, 4408, ...), and a
  frame over ``maxPayload`` gets a 1009 close frame, not a dropped TCP connection;
- WebSocket pings every ``pingIntervalMs``; a peer that does not answer within
  ``pingTimeoutMs`` is dropped (and its presence removed by the consumer);
- SIGTERM/SIGINT are handled here, not by the server: stop listening, send ``shutdown``,
  close clients with 1012, then stop (design/reliability.md #1, #3). A second signal stops
  at once;
- one ``Wingman gateway listening on ws://HOST:PORT/`` line with the bound port (also for
  ``--port 0``), and the PID file when asked;
- writes never wait for a slow reader: one socket must not stall the hub's fan-out. Instead
  a socket whose unread bytes pass ``maxBufferedBytes`` loses its droppable events and is
  then closed 4008, and dropped if it still reads nothing (gateway/connection.py; the
  socket's write buffer is read through the scope: a FrameWriter on uvicorn, a
  TwistedSocket on daphne);
- a client cannot queue frames faster than the application takes them: uvicorn stops
  reading a socket until its last frame was taken, daphne (here) while
  ``INBOUND_QUEUE_HIGH`` of its frames wait. So a flood meets the rate limit (close 4029)
  at once instead of after every frame already read, and cannot grow the process;
- writes are not held back by the kernel either: every accepted socket has TCP_NODELAY
  (without it Nagle + the peer's delayed ACK batch a fast stream of small frames into
  ~64 KB bursts every ~10 ms on loopback);
- instead the gateway bounds the batching itself (uvicorn): frames go to the socket through
  a :class:`~gateway.frames.FrameWriter`, which writes a frame at once when the socket was
  quiet for ``writeCoalesceUs`` and otherwise joins the frames of that window into one
  write (an agent streaming thousands of tokens a second pays one ``send`` per window, not
  per token).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

logger = logging.getLogger("wingman.gateway")

#: How long the drain may take before the process stops anyway.
DRAIN_SECONDS = 3.0
LISTEN_BACKLOG = 2048
#: gc generation-0 threshold while serving (Python's default is 700).
GC_THRESHOLD = 20_000
#: daphne: frames of one socket waiting for the application above which it is not read.
INBOUND_QUEUE_HIGH = 64
#: ... and how often a paused socket checks whether the application caught up.
INBOUND_POLL_SECONDS = 0.002
#: Write-buffer high-water mark per socket under uvicorn: above it ``send`` would wait for
#: the reader, which would stall the fan-out to every other socket.
_NEVER_PAUSE = 1 << 40


def serve(*, host: str, port: int, pid_file: Path | None = None, server: str | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from django.conf import settings

    name = server or settings.WINGMAN.asgi_server
    if name == "daphne":
        return _serve_daphne(host=host, port=port, pid_file=pid_file)
    return _serve_uvicorn(host=host, port=port, pid_file=pid_file)


# shared --------------------------------------------------------------------------------
def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(server: str, host: str, port: int, pid_file: Path | None) -> None:
    from gateway import statelock

    url_host = _url_host(host)
    statelock.record_address(f"{url_host}:{port}")
    print(f"  ASGI server: {server}", flush=True)
    print(f"Wingman gateway listening on ws://{url_host}:{port}/", flush=True)
    print(f"  health: http://{url_host}:{port}/health", flush=True)
    print(f"  Control UI: http://{url_host}:{port}/", flush=True)
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n{url_host}:{port}\n", encoding="utf-8")


def _announce_ui(host: str, port: int) -> None:
    """The second listener (``gateway.controlUi.port``) serves the same app."""
    print(f"  Control UI also on http://{_url_host(host)}:{port}/", flush=True)


def _ui_port(port: int) -> int | None:
    """The Control UI's own port, or None when it is off or the same as the gateway's."""
    from django.conf import settings

    ui = settings.WINGMAN.control_ui
    if not ui.enabled or (ui.port == port and port != 0):
        return None
    return ui.port


def _cannot_listen_ui(host: str, port: int, reason: str) -> None:
    # The gateway itself still serves the UI at /, so this is a warning, not a failure.
    print(
        f"wingman: warning: Control UI port {host}:{port} unavailable ({reason}); "
        "the Control UI stays available on the gateway port",
        file=sys.stderr,
        flush=True,
    )


def _cannot_listen(host: str, port: int, reason: str) -> int:
    print(f"wingman: cannot listen on {host}:{port}: {reason}", file=sys.stderr, flush=True)
    return 1


def _tune_gc() -> None:
    """Everything imported so far lives as long as the process: keep it out of the cyclic
    GC's scans (``freeze``), whose full passes otherwise set the fan-out p99 with 1000
    sockets open; and collect the young generation less often (every 20k allocations
    instead of 700: a connect storm otherwise runs hundreds of collections)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 50)


async def _drain(stop_listening: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
    """Stop accepting, tell every client (``shutdown``, close 1012), then ``stop()``."""
    from gateway.hub import current_hub

    try:
        with contextlib.suppress(Exception):
            await stop_listening()
        hub = current_hub()
        if hub is not None:
            await asyncio.wait_for(
                hub.shutdown("gateway stopping", grace_seconds=DRAIN_SECONDS - 0.5),
                DRAIN_SECONDS,
            )
    except Exception:
        logger.exception("drain did not finish cleanly")
    finally:
        stop()


class _Signals:
    """SIGTERM/SIGINT: the first one drains, a second one stops now."""

    def __init__(
        self,
        drain: Callable[[], Awaitable[None]],
        stop_now: Callable[[], None],
    ) -> None:
        self.drain = drain
        self.stop_now = stop_now
        self.stopping = False
        self.task: asyncio.Future[None] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.received, sig)

    def received(self, sig: int) -> None:
        if self.stopping:
            logger.warning("second %s: stopping now", signal.Signals(sig).name)
            self.stop_now()
            return
        self.stopping = True
        logger.info("%s: draining connections", signal.Signals(sig).name)
        self.task = asyncio.ensure_future(self.drain())


def _policy():
    from django.conf import settings

    return settings.WINGMAN.policy


# uvicorn -------------------------------------------------------------------------------
def _listen(host: str, port: int) -> socket.socket:
    """The listening socket (bound here so the port is known and errors are ours).

    Created with getaddrinfo's protocol (``IPPROTO_TCP``), not 0: accepted sockets inherit
    it, and asyncio only sets TCP_NODELAY on sockets whose ``proto`` is ``IPPROTO_TCP``.
    """
    family, _, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _no_delay(transport) -> None:
    """TCP_NODELAY on the socket under ``transport``, whatever made it: each frame goes
    out when it is written instead of waiting for the peer's (delayed) ACK."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _serve_uvicorn(*, host: str, port: int, pid_file: Path | None) -> int:
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.protocol import State

    from gateway.connection import FRAMES_SCOPE_KEY
    from gateway.frames import SOCKET_SCOPE_KEY, AsyncioSocket, FrameWriter
    from wingman.asgi import application

    window = _policy().write_coalesce_us / 1e6

    class GatewayHttp(H11Protocol):
        """h11 with the request's socket in its scope (SOCKET_SCOPE_KEY)."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            app = self.app

            async def with_socket(scope, receive, send):
                scope[SOCKET_SCOPE_KEY] = AsyncioSocket(self.transport)
                return await app(scope, receive, send)

            self.app = with_socket

    class GatewayWebSocket(WebSocketsSansIOProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            transport.set_write_buffer_limits(high=_NEVER_PAUSE)
            _no_delay(transport)

        async def run_asgi(self) -> None:
            # The consumer writes its frames (coalesced) and reads the write buffer (slow
            # consumer, close 4008) through this.
            self.scope[FRAMES_SCOPE_KEY] = FrameWriter(  # type: ignore[index]
                self.transport, self._frames_open, window
            )
            await super().run_asgi()

        def _frames_open(self) -> bool:
            return not (self.close_sent or self.disconnected) and self.conn.state is State.OPEN

    class GatewayServer(uvicorn.Server):
        """uvicorn with our signal handling, drain and listening line."""

        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.signals = _Signals(
                lambda: _drain(self._stop_listening, self._stop), self._stop_now
            )

        @contextlib.contextmanager
        def capture_signals(self):
            self.signals.install(asyncio.get_running_loop())
            yield

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()
                _announce("uvicorn", bound[0], bound[1], pid_file)
                for extra in self.servers[1:]:
                    ui_bound = extra.sockets[0].getsockname()
                    _announce_ui(ui_bound[0], ui_bound[1])

        async def _stop_listening(self) -> None:
            for server in self.servers:
                server.close()

        def _stop(self) -> None:
            self.should_exit = True

        def _stop_now(self) -> None:
            self.force_exit = self.should_exit = True

    policy = _policy()
    try:
        sock = _listen(host, port)
    except OSError as exc:
        return _cannot_listen(host, port, exc.strerror or str(exc))
    sockets = [sock]
    ui_port = _ui_port(port)
    if ui_port is not None:
        try:
            sockets.append(_listen(host, ui_port))
        except OSError as exc:
            _cannot_listen_ui(host, ui_port, exc.strerror or str(exc))
    config = uvicorn.Config(
        application,
        http=GatewayHttp,
        ws=GatewayWebSocket,
        loop="asyncio",
        lifespan="off",
        log_config=None,
        access_log=False,
        # The client address is the peer's: the auth lockout and the pre-auth rate limit
        # are keyed by it, so no X-Forwarded-For from anyone (design/reliability.md #8).
        proxy_headers=False,
        server_header=False,
        backlog=LISTEN_BACKLOG,
        ws_max_size=policy.max_payload,
        ws_ping_interval=policy.ping_interval_ms / 1000,
        ws_ping_timeout=policy.ping_timeout_ms / 1000,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=1,
    )
    server = GatewayServer(config)
    _tune_gc()
    try:
        server.run(sockets=sockets)
    finally:
        for s in sockets:
            s.close()
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    return 0


# daphne --------------------------------------------------------------------------------
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


def _patch_protocol(ws_factory) -> None:
    """Our daphne WebSocket protocol (see the module docstring)."""
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import reactor
    from twisted.internet.tcp import Connection as TcpConnection

    from gateway.frames import frame_head

    class GatewayWebSocketProtocol(WebSocketProtocol):
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

    ws_factory.protocol = GatewayWebSocketProtocol


def _serve_daphne(*, host: str, port: int, pid_file: Path | None) -> int:
    from daphne.server import Server  # installs the asyncio reactor: import first
    from twisted.internet import reactor

    from gateway.connection import FRAMES_SCOPE_KEY, SLOW_CONSUMER_ABORT_SECONDS
    from gateway.frames import SOCKET_SCOPE_KEY, TwistedSocket
    from wingman.asgi import application

    policy = _policy()
    state: dict = {"ports": []}

    class GatewayServer(Server):
        def create_application(self, protocol, scope):
            # The slow-consumer rules read the socket's write buffer through these.
            if scope.get("type") == "websocket":
                scope[FRAMES_SCOPE_KEY] = TwistedSocket(protocol.transport, protocol)
            elif getattr(protocol, "channel", None) is not None:  # an HTTP request
                scope[SOCKET_SCOPE_KEY] = TwistedSocket(protocol.channel.transport)
            return super().create_application(protocol, scope)

        def listen_success(self, port_obj):
            super().listen_success(port_obj)
            state["ports"].append(port_obj)
            addr = port_obj.getHost()
            # TCP endpoints listen synchronously, in the order given: the gateway first.
            if len(state["ports"]) == 1:
                _announce("daphne", addr.host, addr.port, pid_file)
            else:
                _announce_ui(addr.host, addr.port)

        def listen_error(self, failure):
            if ui_port and getattr(failure.value, "port", None) == ui_port:
                _cannot_listen_ui(host, ui_port, failure.getErrorMessage())
                return
            state["exit"] = _cannot_listen(host, port, failure.getErrorMessage())
            super().listen_error(failure)

    async def stop_listening() -> None:
        for port_obj in state["ports"]:
            await _deferred(port_obj.stopListening())

    signals = _Signals(lambda: _drain(stop_listening, reactor.stop), reactor.stop)

    def ready() -> None:
        _quiet_autobahn()
        _patch_protocol(server.ws_factory)
        # A peer that leaves our close frame unanswered (e.g. a slow consumer closed 4008
        # with data still to read) is dropped after the slow-consumer grace, as on uvicorn,
        # not after autobahn's default 1 s.
        server.ws_factory.setProtocolOptions(
            failByDrop=False, closeHandshakeTimeout=SLOW_CONSUMER_ABORT_SECONDS
        )
        signals.install(reactor._asyncioEventloop)

    endpoint_host = host.replace(":", r"\:")
    ui_port = _ui_port(port)
    endpoints = [
        f"tcp:port={p}:interface={endpoint_host}:backlog={LISTEN_BACKLOG}"
        for p in (port, ui_port)
        if p is not None
    ]
    server = GatewayServer(
        application=application,
        endpoints=endpoints,
        signal_handlers=False,
        ping_interval=policy.ping_interval_ms / 1000,
        ping_timeout=policy.ping_timeout_ms / 1000,
        websocket_max_message_size=policy.max_payload,
        websocket_max_frame_size=policy.max_payload,
        websocket_handshake_timeout=10,
        application_close_timeout=5,
        ready_callable=ready,
        server_name="wingman",
    )
    _tune_gc()
    try:
        server.run()
    finally:
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    return state.get("exit", 0)


async def _deferred(d):
    """Await a Twisted Deferred (or a plain value) from asyncio."""
    from twisted.internet.defer import Deferred

    if isinstance(d, Deferred):
        return await d.asFuture(asyncio.get_running_loop())
    return d
