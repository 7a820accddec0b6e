"""The gateway under uvicorn: our WebSocket protocol (frame writer, TCP_NODELAY, no write
pauses), signal handling, drain and listening line (``gateway/server/serve.py`` has the
guarantees both servers keep)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from gateway.server import common
from gateway.ws.writer import FRAMES_SCOPE_KEY, SOCKET_SCOPE_KEY, AsyncioSocket, FrameWriter

#: Write-buffer high-water mark per socket: above it ``send`` would wait for the reader,
#: which would stall the fan-out to every other socket.
_NEVER_PAUSE = 1 << 40
_OPEN = State.OPEN


class GatewayHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol (its C parser: a bridge long poll or a webhook costs a
    fraction of h11's pure-Python parsing) with the request's socket in its scope
    (SOCKET_SCOPE_KEY: an SSE response reads how much its client left unread)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        app = self.app

        async def with_socket(scope, receive, send):
            scope[SOCKET_SCOPE_KEY] = AsyncioSocket(self.transport)
            return await app(scope, receive, send)

        self.app = with_socket


class GatewayWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, writing frames through a :class:`FrameWriter`."""

    #: Write-coalescing window in seconds (``writeCoalesceUs``), set by :func:`serve`.
    coalesce_window = 0.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=_NEVER_PAUSE)
        common.no_delay(transport)

    async def run_asgi(self) -> None:
        # The consumer writes its frames (coalesced) and reads the write buffer (slow
        # consumer, close 4008) through this.
        self.scope[FRAMES_SCOPE_KEY] = FrameWriter(  # type: ignore[index]
            self.transport, self._frames_open, self.coalesce_window
        )
        await super().run_asgi()

    def send_receive_event_to_app(self) -> None:
        """uvicorn's, pausing reading only when a frame is already waiting for the app:
        uvicorn pauses after every frame and resumes once the app takes it, two
        ``epoll_ctl`` calls per inbound frame, while the app mostly takes each frame before
        the next arrives. At most two frames wait per socket (uvicorn: one)."""
        if self.read_paused or not self.queue.empty():
            super().send_receive_event_to_app()
            return
        self.read_paused = True  # uvicorn then leaves reading on
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = False

    def _frames_open(self) -> bool:
        return self.conn.state is _OPEN and not (self.close_sent or self.disconnected)


class GatewayServer(uvicorn.Server):
    """uvicorn with our signal handling, drain and listening line."""

    def __init__(self, config: uvicorn.Config, pid_file: Path | None) -> None:
        super().__init__(config)
        self.pid_file = pid_file
        self.signals = common.Signals(
            lambda: common.drain(self._stop_listening, self._stop), self._stop_now
        )

    @contextlib.contextmanager
    def capture_signals(self):
        self.signals.install(asyncio.get_running_loop())
        yield

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            await common.process_started()
            bound = self.servers[0].sockets[0].getsockname()
            common.announce("uvicorn", bound[0], bound[1], self.pid_file)
            for extra in self.servers[1:]:
                ui_bound = extra.sockets[0].getsockname()
                common.announce_ui(ui_bound[0], ui_bound[1])

    async def _stop_listening(self) -> None:
        for server in self.servers:
            server.close()

    def _stop(self) -> None:
        self.should_exit = True

    def _stop_now(self) -> None:
        self.force_exit = self.should_exit = True


def _config(application, policy, tls_files) -> uvicorn.Config:
    cert, key = tls_files or (None, None)
    return uvicorn.Config(
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
        backlog=common.LISTEN_BACKLOG,
        timeout_keep_alive=common.HTTP_KEEP_ALIVE_SECONDS,
        ws_max_size=policy.max_payload,
        ws_ping_interval=policy.ping_interval_ms / 1000,
        ws_ping_timeout=policy.ping_timeout_ms / 1000,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=1,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )


def serve(*, host: str, port: int, pid_file: Path | None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from wingman.asgi import application

    policy = common.policy()
    tls_files = common.tls_files()
    GatewayWebSocket.coalesce_window = policy.write_coalesce_us / 1e6
    try:
        sock = common.listen(host, port)
    except OSError as exc:
        return common.cannot_listen(host, port, exc.strerror or str(exc))
    sockets = [sock]
    ui_port = common.ui_port(port)
    if ui_port is not None:
        try:
            sockets.append(common.listen(host, ui_port))
        except OSError as exc:
            common.cannot_listen_ui(host, ui_port, exc.strerror or str(exc))
    server = GatewayServer(_config(application, policy, tls_files), pid_file)
    common.tune_gc()
    try:
        server.run(sockets=sockets)
    finally:
        for s in sockets:
            s.close()
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    return 0
