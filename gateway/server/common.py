"""What both ASGI servers share: the listening socket and line, the drain on SIGTERM, GC
tuning (``gateway/server/serve.py`` says what both guarantee)."""

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
#: How long an idle HTTP keep-alive connection stays open (uvicorn's default is 5 s). Longer
#: than the idle expiry of common clients (httpx 5 s, aiohttp 15 s, undici 4 s) so the client
#: closes first: a server closing at the client's own 5 s races the client's next request on
#: that connection, which then fails (ECONNRESET) and a webhook sender sees an error for a
#: delivery the gateway never read. nginx's default is the same 75 s.
HTTP_KEEP_ALIVE_SECONDS = 75
#: gc generation-0 threshold while serving (Python's default is 700).
GC_THRESHOLD = 20_000


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def schemes() -> tuple[str, str]:
    """(ws or wss, http or https) as ``gateway.tls`` says."""
    from django.conf import settings

    return ("wss", "https") if settings.WINGMAN.tls.on else ("ws", "http")


def tls_files() -> tuple[Path, Path] | None:
    """(cert, key) to serve with, None without TLS; ``SystemExit`` (a clear message) when
    the files are missing or do not load. Prints the certificate's SHA-256 for pinning."""
    from django.conf import settings

    from wingman import tls

    cfg = settings.WINGMAN.tls
    if not cfg.on:
        return None
    if cfg.cert_path and cfg.key_path:
        cert, key = Path(cfg.cert_path).expanduser(), Path(cfg.key_path).expanduser()
    else:
        cert, key = tls.ensure_self_signed(settings.WINGMAN.state_dir)
    try:
        tls.server_context(cert, key)
        print(f"  TLS certificate SHA-256: {tls.file_fingerprint(cert)}", flush=True)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wingman: gateway.tls: cannot load {cert} / {key}: {exc}") from None
    return cert, key


def announce(server: str, host: str, port: int, pid_file: Path | None) -> None:
    from gateway.server import statelock

    shown = url_host(host)
    ws, http = schemes()
    statelock.record_address(f"{shown}:{port}")
    print(f"  ASGI server: {server}", flush=True)
    print(f"Wingman gateway listening on {ws}://{shown}:{port}/", flush=True)
    print(f"  health: {http}://{shown}:{port}/health", flush=True)
    print(f"  Control UI: {http}://{shown}:{port}/", flush=True)
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n{shown}:{port}\n", encoding="utf-8")
    from gateway.discovery import announce as discovery

    discovery.start(host, port)  # mDNS, when discovery is on (in the background)


def announce_ui(host: str, port: int) -> None:
    """The second listener (``gateway.controlUi.port``) serves the same app."""
    print(f"  Control UI also on {schemes()[1]}://{url_host(host)}:{port}/", flush=True)


def ui_port(port: int) -> int | None:
    """The Control UI's own port, or None when it is off or the same as the gateway's."""
    from django.conf import settings

    ui = settings.WINGMAN.control_ui
    if not ui.enabled or (ui.port == port and port != 0):
        return None
    return ui.port


def cannot_listen_ui(host: str, port: int, reason: str) -> None:
    # The gateway itself still serves the UI at /, so this is a warning, not a failure.
    print(
        f"wingman: warning: Control UI port {host}:{port} unavailable ({reason}); "
        "the Control UI stays available on the gateway port",
        file=sys.stderr,
        flush=True,
    )


def cannot_listen(host: str, port: int, reason: str) -> int:
    print(f"wingman: cannot listen on {host}:{port}: {reason}", file=sys.stderr, flush=True)
    return 1


async def process_started() -> None:
    """What this process does is registered at start, not on first use: its hub (the seat
    on the channel layer, with the apps' control handlers) and the apps' background work
    (e.g. the run service's sweeper of lost runs)."""
    from gateway.delivery import extensions
    from gateway.delivery.hub import get_hub

    hub = await get_hub()
    for work in extensions.background():
        hub.spawn(work())


def tune_gc() -> None:
    """Everything imported so far lives as long as the process: keep it out of the cyclic
    GC's scans (``freeze``), whose full passes otherwise set the fan-out p99 with 1000
    sockets open; and collect the young generation less often (every 20k allocations
    instead of 700: a connect storm otherwise runs hundreds of collections). The apps'
    preloads (the agent runtime) are imported first, so they are frozen too and the first
    run does not wait for them."""
    from gateway.delivery import extensions

    extensions.preload()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 50)


async def drain(stop_listening: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
    """Stop accepting, tell every client (``shutdown``, close 1012), then ``stop()``."""
    from gateway.delivery.hub import current_hub
    from gateway.discovery import announce as discovery

    try:
        await discovery.withdraw()  # clients stop finding us before we stop answering
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


class Signals:
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


def policy():
    from django.conf import settings

    return settings.WINGMAN.policy


def listen(host: str, port: int) -> socket.socket:
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


def no_delay(transport) -> None:
    """TCP_NODELAY on the socket under ``transport``, whatever made it: each frame goes
    out when it is written instead of waiting for the peer's (delayed) ACK."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
