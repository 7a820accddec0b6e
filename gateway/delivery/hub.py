"""The per-process hub: this process's sockets, and the fan-out of events to them.

Every gateway process has exactly one hub, sitting on the process's
:class:`~gateway.delivery.seat.Seat` (its one channel-layer channel). An event crosses the
channel layer once per process and the hub fans it out to its local connections, so a
broadcast costs one channel-layer message per process instead of one per socket, and an
event is serialised once (design/performance.md).

The hub indexes its own connections and topic members, keeps their presence
(:class:`~gateway.delivery.presence.Tracker`), runs the per-socket timers (``tick``,
``presence.tick``) and the graceful drain on shutdown. Shared state lives in the cache
(``presence.py``); the dicts here only index this process's own sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import psutil
from django.conf import settings

from gateway.delivery import extensions, memory, presence
from gateway.delivery import seat as seats
from gateway.delivery.encoded import EncodedEvent
from gateway.delivery.listeners import TopicListener
from gateway.protocol import events as ev
from gateway.protocol.dialects.base import now_ms
from gateway.protocol.errors import CloseCode
from gateway.state import outage

logger = logging.getLogger(__name__)


class Socket(Protocol):
    """What the hub needs of a connection (``gateway/ws/connection.py`` implements it)."""

    conn_id: str
    topics: set[str]
    subscriptions: set[str]
    #: Written after the others in a fan-out (an HTTP bridge session being long-polled).
    writes_last: bool
    #: Its ``writes_last`` can ever be true (a bridge session; constant): while no
    #: connection's can, a fan-out does not ask each one.
    may_write_last: bool

    def render_event(self, event: EncodedEvent) -> str | None: ...

    async def send_event(self, text: str, *, now: bool = False) -> None: ...

    def send_event_nowait(self, text: str, *, now: bool = False) -> bool: ...

    async def close(self, code: int) -> None: ...


class Stats:
    """This process's counters (exported by /health, /stats and /metrics)."""

    def __init__(self) -> None:
        # The process's start, not the hub's: the hub is created by the first connection.
        self.started_at = psutil.Process().create_time()
        self.messages_processed = 0
        self.frames_rejected = 0
        self.events_delivered = 0
        self.events_dropped = 0
        self.connections_total = 0

    @property
    def uptime_ms(self) -> int:
        return int((time.time() - self.started_at) * 1000)


class Hub:
    """One per gateway process (per event loop): see the module docstring."""

    def __init__(self) -> None:
        self.seat = seats.Seat(on_envelope=self._deliver_envelope)
        self.id = self.seat.id
        self.loop = self.seat.loop
        self.connections: dict[str, Socket] = {}
        #: How many of them may write last (Socket.may_write_last).
        self._may_write_last = 0
        #: Sockets the ASGI server has not yet reported gone (what the drain waits for).
        self._sockets: set[str] = set()
        self.topics: dict[str, set[str]] = {}
        #: topic → its non-socket subscribers (Hub.listen); empty on the fan-out hot path.
        self.listeners: dict[str, set[TopicListener]] = {}
        self.presence = presence.Tracker(
            self.id, self._publish_presence, on_recovered=lambda: self.spawn(self.seat.refresh())
        )
        self.stats = Stats()
        self.collector = self.seat.collector
        self.shutting_down = False
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._drained = asyncio.Event()
        self._drained.set()

    # lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Take the seat and start the timers."""
        outage.quiet_unretrieved(self.loop)
        await self.seat.start()
        seats.install(self.seat)
        policy = settings.WINGMAN.policy
        timers: list[tuple[float, Callable[[], Awaitable[Any]]]] = [
            (policy.tick_interval_ms / 1000, self._tick),
            (policy.presence_tick_ms / 1000, self._presence_tick),
            (presence.HEARTBEAT_SECONDS, self._heartbeat),
            (memory.CHECK_SECONDS, self._collect_garbage),
        ]
        # Each in an empty context (as runs are): they outlive whoever started the hub, and a
        # first caller inside async_to_sync (a sync view: POST /api/runs) has asgiref's
        # CurrentThreadExecutor in its context, shut once that call returns; every
        # sync_to_async of a timer (cache writes) would fail for the life of the process.
        self._tasks = [
            asyncio.create_task(
                self._every(seconds, action),
                name=f"hub-{action.__name__}",
                context=contextvars.Context(),
            )
            for seconds, action in timers
        ]
        logger.debug("hub %s started on %s", self.id, self.seat.channel_name)

    async def stop(self) -> None:
        """Forget this process's presence and leave the channel layer."""
        for task in self._tasks:
            task.cancel()
        await self.presence.close()
        await self.seat.stop()
        seats.forget(self.seat)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        self._tasks = []

    async def shutdown(self, reason: str, *, grace_seconds: float = 3.0) -> None:
        """Drain: let the apps finish (runs), tell every client, close it with 1012, wait
        for the sockets to go."""
        self.shutting_down = True
        for hook in extensions.shutdown_hooks():
            try:
                await hook()
            except Exception:
                logger.exception("shutdown hook %r failed", hook)
        shutdown = EncodedEvent.build(ev.SHUTDOWN, ev.ShutdownPayload(reason=reason))
        await self.fan_out(shutdown)
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await conn.close(CloseCode.SERVICE_RESTART)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), grace_seconds)
        for conn in list(self.connections.values()):  # peers that never answered the close
            await self.unregister(conn)
        await self.stop()

    async def _every(self, seconds: float, action: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except outage.ERRORS as exc:
                outage.redis_state.failed(exc, f"running the hub timer {action.__name__}")
            except Exception:
                logger.exception("hub timer %s failed", getattr(action, "__name__", action))

    async def _collect_garbage(self) -> None:
        self.collector.check()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        """Run ``coro`` in the background, keeping a reference until it finishes; what it
        raises is logged here (never "Task exception was never retrieved")."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._spawned_done)
        return task

    def _spawned_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        if outage.is_outage(exc):
            outage.redis_state.failed(exc, "in a background task")
        else:
            logger.error("background task %s failed", task.get_name(), exc_info=exc)

    # connections -----------------------------------------------------------------------
    def new_conn_id(self) -> str:
        return f"{self.id}-{secrets.token_hex(6)}"

    def add(self, conn: Socket) -> None:
        """A socket opened (not yet authenticated)."""
        self.connections[conn.conn_id] = conn
        self._may_write_last += conn.may_write_last
        self._sockets.add(conn.conn_id)
        self._drained.clear()
        self.stats.connections_total += 1

    def socket_closed(self, conn: Socket) -> None:
        """The ASGI server reported the socket gone (the shutdown drain waits for this)."""
        self._sockets.discard(conn.conn_id)
        if not self._sockets:
            self._drained.set()

    def established(self, conn: Socket, entry: dict[str, Any]) -> None:
        """A connection finished its handshake: it is now present (unless already closed)."""
        if conn.conn_id in self.connections:
            self.presence.add(conn.conn_id, entry)

    async def unregister(self, conn: Socket) -> None:
        """A connection closed: drop it, its presence and its topics. The presence goes
        first and every topic is left even when one fails (Redis down): nothing of a
        closed connection may stay listed."""
        if self.connections.pop(conn.conn_id, None) is not None:
            self._may_write_last -= conn.may_write_last
            self.collector.ended()
        self.presence.remove(conn.conn_id, now_ms())
        for hook in extensions.disconnect_hooks():
            try:
                await hook(conn.conn_id)
            except Exception:
                logger.exception("disconnect hook %r failed for %s", hook, conn.conn_id)
        for topic in list(conn.topics):
            try:
                await self.leave_topic(conn, topic)
            except Exception as exc:
                # Only the channel-layer group is left behind: events for the topic may
                # still reach this hub, which has no socket for them.
                logger.warning("%s left %s, but not its group: %r", conn.conn_id, topic, exc)

    @property
    def established_count(self) -> int:
        return len(self.presence.entries)

    # topics ----------------------------------------------------------------------------
    async def join_topic(self, conn: Socket, topic: str) -> None:
        if conn.conn_id not in self.connections:
            return  # closed meanwhile (e.g. a run's follow-up after the socket went)
        members = self.topics.setdefault(topic, set())
        first = not members and topic not in self.listeners
        # Recorded before the await, so closing meanwhile leaves the topic again (and a
        # failed group_add is retried by the seat's refresh).
        members.add(conn.conn_id)
        conn.topics.add(topic)
        if first:
            await self.seat.join(topic)

    async def leave_topic(self, conn: Socket, topic: str) -> None:
        conn.topics.discard(topic)
        members = self.topics.get(topic)
        if members is None:
            return
        members.discard(conn.conn_id)
        if not members:
            del self.topics[topic]
            if topic not in self.listeners:
                await self.seat.leave(topic)

    async def listen(
        self,
        topic: str,
        *,
        key: str | None = None,
        max_bytes: int | None = None,
        want: Callable[[EncodedEvent], bool] | None = None,
    ) -> TopicListener:
        """Subscribe a :class:`TopicListener` to ``topic`` (its events with ``key`` that
        ``want`` accepts, at most ``max_bytes`` of them unread); always :meth:`unlisten` it."""
        listener = TopicListener(topic, key, max_bytes, want)
        first = topic not in self.topics and topic not in self.listeners
        # Registered before the await, so a socket leaving the topic meanwhile keeps the group.
        self.listeners.setdefault(topic, set()).add(listener)
        if first:
            await self.seat.join(topic)
        return listener

    async def unlisten(self, listener: TopicListener) -> None:
        topic = listener.topic
        members = self.listeners.get(topic)
        if members is None or listener not in members:
            return
        members.discard(listener)
        if not members:
            del self.listeners[topic]
            if topic not in self.topics:
                await self.seat.leave(topic)

    def _notify(self, topic: str, event: EncodedEvent) -> None:
        for listener in self.listeners.get(topic, ()):
            listener.offer(event)

    # delivery --------------------------------------------------------------------------
    async def _deliver_envelope(self, message: dict[str, Any], last: bool = True) -> None:
        """An event another process published (``last``: the last of what arrived together,
        so the sockets' coalescing windows write it all out now: the window is for a stream
        arriving piece by piece, and holding a batch that came in one message only delays it)."""
        event = EncodedEvent.from_envelope(message)
        await self._send_each(self._targets(message), event, flush=last)
        if self.listeners and "topic" in message:
            self._notify(message["topic"], event)

    def _targets(self, route: dict[str, Any]) -> list[Socket]:
        """This process's connections a routed event is for."""
        conns = self.connections
        if "topic" in route:
            exclude = route.get("exclude")
            ids = self.topics.get(route["topic"], ())
            return [conns[c] for c in ids if c in conns and c != exclude]
        return list(conns.values())

    async def deliver(self, event: EncodedEvent, route: dict[str, Any] | None = None) -> None:
        """Deliver here at once, then (in order) to the other processes that need it."""
        route = route or {}
        await self._send_each(self._targets(route), event)
        if self.listeners and "topic" in route:
            self._notify(route["topic"], event)
        self.seat.send_remote(event, route)

    async def fan_out(self, event: EncodedEvent) -> int:
        """Deliver to every local established connection that wants the event."""
        return await self._send_each(list(self.connections.values()), event)

    async def _send_each(
        self, targets: list[Socket], event: EncodedEvent, *, flush: bool = False
    ) -> int:
        sent = 0
        now = flush or event.name in ev.REQUEST_EVENTS
        last = [conn for conn in targets if conn.writes_last] if self._may_write_last else None
        if last:  # long-polled bridge sessions last: their polls answer after the fan-out
            targets = [conn for conn in targets if not conn.writes_last] + last
        for conn in targets:
            text = conn.render_event(event)
            if text is None:
                continue
            try:
                if not conn.send_event_nowait(text, now=now):
                    await conn.send_event(text, now=now)
                sent += 1
            except Exception:
                logger.debug("send to %s failed", conn.conn_id, exc_info=True)
        self.stats.events_delivered += sent
        return sent

    # presence --------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        await self.presence.heartbeat()
        await self.seat.ensure_joined()

    async def _publish_presence(self, payload: dict[str, Any]) -> None:
        sv = payload["stateVersion"]
        await self.deliver(EncodedEvent.build(ev.PRESENCE, payload, sv))

    async def all_presence(self) -> list[dict[str, Any]]:
        return (await self.presence.snapshot())[0]

    async def _tick(self) -> None:
        await self.fan_out(EncodedEvent.build(ev.TICK, {"ts": now_ms()}))

    async def _presence_tick(self) -> None:
        if not any(ev.PRESENCE_TICK in c.subscriptions for c in self.connections.values()):
            return
        entries = await self.all_presence()
        payload = {"count": len(entries), "presence": entries, "ts": now_ms()}
        await self.fan_out(EncodedEvent.build(ev.PRESENCE_TICK, payload))


_hub: Hub | None = None
_hub_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None


def running_hub() -> Hub | None:
    """The hub of the running event loop if it has started (no coroutine: what a hot path
    asks before ``await get_hub()``)."""
    hub = _hub
    return hub if hub is not None and hub.loop is asyncio.get_running_loop() else None


async def get_hub() -> Hub:
    """This process's hub, started on first use in the running event loop."""
    global _hub, _hub_lock
    loop = asyncio.get_running_loop()
    if _hub is not None and _hub.loop is loop:
        return _hub
    if _hub_lock is None or _hub_lock[0] is not loop:
        _hub_lock = (loop, asyncio.Lock())
    async with _hub_lock[1]:
        if _hub is None or _hub.loop is not loop:
            hub = Hub()
            await hub.start()
            _hub = hub
    return _hub


def current_hub() -> Hub | None:
    """The running hub, if one was started in this process (for sync readers like /metrics)."""
    return _hub


async def reset_hub() -> None:
    """Stop and forget the hub (tests, and the end of a server run)."""
    global _hub
    hub = _hub
    if hub is not None:
        # Stop first: stopping still publishes (presence) through this hub.
        if hub.loop is asyncio.get_running_loop():
            await hub.stop()
        _hub = None
