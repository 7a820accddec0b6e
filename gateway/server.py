"""Runs the ASGI app under daphne with the gateway's policy and a graceful SIGTERM.

daphne alone drops every socket on SIGTERM without a close frame and refuses close codes
outside 1000/3000-4999 (autobahn's ``sendClose``), so this module:
- subclasses daphne's WebSocket protocol to send any close code (1008, 1009, 1012, ...);
- sets autobahn's payload limit to ``maxPayload`` and ``failByDrop=False`` so an oversized
  frame gets a 1009 close frame instead of a dropped TCP connection;
- handles SIGTERM/SIGINT itself: stop listening, send ``shutdown``, close clients with
  1012, then stop the reactor (design/reliability.md #1, #3).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from pathlib import Path

logger = logging.getLogger("wingman.gateway")

#: How long the drain may take before the process stops anyway.
DRAIN_SECONDS = 3.0
LISTEN_BACKLOG = 2048


def _patch_protocol(ws_factory) -> None:
    """Let the application close with any valid code (daphne → autobahn ``sendClose``)."""
    from daphne.ws_protocol import WebSocketProtocol

    class GatewayWebSocketProtocol(WebSocketProtocol):
        def serverClose(self, code=None):
            self.sendCloseFrame(code=1000 if code is None else code, isReply=False)

    ws_factory.protocol = GatewayWebSocketProtocol


def serve(*, host: str, port: int, pid_file: Path | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from daphne.server import Server  # installs the asyncio reactor: import first
    from django.conf import settings
    from twisted.internet import reactor

    from wingman.asgi import application

    policy = settings.WINGMAN.policy
    state = {"stopping": False, "ports": []}

    class GatewayServer(Server):
        def listen_success(self, port_obj):
            super().listen_success(port_obj)
            state["ports"].append(port_obj)
            addr = port_obj.getHost()
            url_host = f"[{addr.host}]" if ":" in addr.host else addr.host
            print(f"Wingman gateway listening on ws://{url_host}:{addr.port}/", flush=True)
            print(f"  health: http://{url_host}:{addr.port}/health", flush=True)
            if pid_file is not None:
                pid_file.write_text(f"{os.getpid()}\n{url_host}:{addr.port}\n", encoding="utf-8")

        def listen_error(self, failure):
            print(
                f"wingman: cannot listen on {host}:{port}: {failure.getErrorMessage()}",
                file=sys.stderr,
                flush=True,
            )
            state["exit"] = 1
            super().listen_error(failure)

    def ready() -> None:
        _patch_protocol(server.ws_factory)
        server.ws_factory.setProtocolOptions(failByDrop=False)
        loop = reactor._asyncioEventloop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda s=sig: _on_signal(s))

    def _on_signal(sig: int) -> None:
        if state["stopping"]:
            logger.warning("second %s: stopping now", signal.Signals(sig).name)
            reactor.stop()
            return
        state["stopping"] = True
        logger.info("%s: draining connections", signal.Signals(sig).name)
        state["drain"] = asyncio.ensure_future(_drain())

    async def _drain() -> None:
        from gateway.hub import current_hub

        for port_obj in state["ports"]:
            with contextlib.suppress(Exception):
                await _deferred(port_obj.stopListening())
        hub = current_hub()
        try:
            if hub is not None:
                await asyncio.wait_for(
                    hub.shutdown("gateway stopping", grace_seconds=DRAIN_SECONDS - 0.5),
                    DRAIN_SECONDS,
                )
        except Exception:
            logger.exception("drain did not finish cleanly")
        finally:
            reactor.stop()

    endpoint_host = host.replace(":", r"\:")
    server = GatewayServer(
        application=application,
        endpoints=[f"tcp:port={port}:interface={endpoint_host}:backlog={LISTEN_BACKLOG}"],
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
    # Everything imported so far lives as long as the process: keep it out of the cyclic
    # GC's scans, whose full passes otherwise set the fan-out p99 with 1000 sockets open.
    gc.collect()
    gc.freeze()
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
