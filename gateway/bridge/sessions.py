"""Bridge sessions: one :class:`~gateway.ws.connection.Connection` each (the same protocol state
machine as a WebSocket: dialect from the first frame, handshake, auth, methods, events, rate
limit, presence) whose transport is a :class:`~gateway.bridge.queue.FrameQueue`.

A session lives in the process that created it (its connection is in that process's hub, so
events reach it exactly as they reach a WebSocket there). It ends when its connection closes
and the client has taken everything, or when no request touched it for
``gateway.bridge.sessionIdleMs`` (then its connection is closed and its presence removed).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from django.conf import settings

from gateway.bridge.queue import FrameQueue
from gateway.delivery.hub import get_hub
from gateway.protocol.errors import CloseCode
from gateway.security.webauth import BrowserCredentials
from gateway.ws.connection import Connection

logger = logging.getLogger(__name__)

#: A session's id carries this many random bytes: knowing it is being that connection.
SESSION_ID_BYTES = 24


class BridgeSession:
    """One bridge client: its connection, its frame queue and when it was last seen."""

    def __init__(self, session_id: str, queue: FrameQueue, connection: Connection) -> None:
        self.id = session_id
        self.queue = queue
        self.connection = connection
        self.last_seen = time.monotonic()
        #: Open SSE streams and polls: a session being read is not idle.
        self.readers = 0
        #: Frames of concurrent sends are processed one send after the other, in order.
        self.inbound = asyncio.Lock()

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    async def receive(self, texts: list[str]) -> int:
        """Feed frames to the connection in order; how many were taken before it closed."""
        taken = 0
        async with self.inbound:
            for text in texts:
                if self.connection.closed:
                    break
                await self.connection.received(text)
                taken += 1
        self.touch()
        return taken


class SessionRegistry:
    """This process's bridge sessions, and the sweeper that expires idle ones."""

    def __init__(self) -> None:
        self.sessions: dict[str, BridgeSession] = {}
        self._sweeper: asyncio.Task | None = None

    async def create(self, scope: dict) -> BridgeSession:
        """A new session whose connection has sent ``connect.challenge`` already."""
        hub = await get_hub()
        # the owner's seat id first: any process can forward to it (gateway/bridge/forward.py)
        session_id = f"{hub.id}~{secrets.token_urlsafe(SESSION_ID_BYTES)}"
        queue = FrameQueue(
            max_bytes=settings.WINGMAN.policy.max_buffered_bytes,
            on_abort=lambda: self.drop(session_id),
        )
        client = scope.get("client") or (None, None)
        connection = Connection(
            queue,
            hub,
            client_ip=client[0],
            browser=BrowserCredentials.from_scope(scope),
        )
        session = BridgeSession(session_id, queue, connection)
        self.sessions[session_id] = session
        self._ensure_sweeper()
        await connection.opened()
        return session

    def get(self, session_id: str | None) -> BridgeSession | None:
        return self.sessions.get(session_id) if session_id else None

    def drop(self, session_id: str) -> None:
        """Forget a session (its connection is closed first if it is not yet)."""
        session = self.sessions.pop(session_id, None)
        if session is not None and not session.connection.closed:
            session.connection.hub.spawn(session.connection.close(CloseCode.NORMAL))

    def finished(self, session: BridgeSession) -> None:
        """The client took the last frame of a closed session: forget it."""
        if session.queue.finished:
            self.sessions.pop(session.id, None)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        idle = settings.WINGMAN.bridge.session_idle_ms / 1000
        while self.sessions:
            await asyncio.sleep(min(1.0, idle / 4))
            await self.sweep()

    async def sweep(self) -> None:
        """Close sessions idle for longer than ``sessionIdleMs`` (presence goes with them)."""
        idle = settings.WINGMAN.bridge.session_idle_ms / 1000
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.readers == 0 and now - session.last_seen > idle:
                logger.info("bridge session of %s expired", session.connection.conn_id)
                self.sessions.pop(session.id, None)
                try:
                    await session.connection.close(CloseCode.NORMAL)
                except Exception:
                    logger.exception("closing expired bridge session failed")


_registry: SessionRegistry | None = None


def registry() -> SessionRegistry:
    """This process's session registry (created on first use, on the running loop)."""
    global _registry
    if _registry is None:
        _registry = SessionRegistry()
    return _registry


def reset_registry() -> None:
    """Forget every session (tests: the hub they were bound to is gone)."""
    global _registry
    _registry = None
