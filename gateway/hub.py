"""The per-process hub: this process's sockets, and its single seat on the channel layer.

Every gateway process has exactly one hub. The hub owns one channel-layer channel, joins
the ``gw.all`` group (and topic groups its sockets subscribe to), and fans every event it
receives out to its local connections. So a broadcast costs one channel-layer message per
process instead of one per socket, and an event is serialised once (design/performance.md).

It also runs the process's timers (tick, presence.tick, presence heartbeat, group refresh)
and the graceful drain on shutdown. Shared state (presence, counters used by several
processes) lives in the cache via ``presence.py``; the dicts here only index this
process's own sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psutil
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.cache import cache

from gateway import memory, outage, presence
from gateway.events import ALL_GROUP, ENVELOPE_TYPE, EncodedEvent, Outbox, now_ms, topic_group
from gateway.protocol import events as ev
from gateway.protocol.dialects.base import dumps
from gateway.protocol.errors import CloseCode

if TYPE_CHECKING:
    from gateway.connection import Connection

logger = logging.getLogger(__name__)

#: Presence changes closer together than this share one ``presence`` event.
PRESENCE_COALESCE_SECONDS = 0.2
#: While Redis is down, presence changes are kept and published again this often.
PRESENCE_RETRY_SECONDS = 2.0
GROUP_REFRESH_SECONDS = 30
#: Longest pause between two attempts to rejoin the groups while Redis is unreachable.
REJOIN_MAX_SECONDS = 1.0
_HUB_KEY_TTL = 120


def _hub_key(hub_id: str) -> str:
    return f"gw:hub:{hub_id}"


def hub_alive(hub_id: str) -> bool:
    """Is the gateway process with this hub id still running? (its key is refreshed)"""
    return bool(hub_id) and cache.get(_hub_key(hub_id)) is not None


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


class TopicListener:
    """A subscriber to a topic that is not a socket (e.g. a Server-Sent Events response).

    ``async for event in listener`` yields the topic's events (:class:`EncodedEvent`) in
    order, only those with ``key`` when one is given (a run's events on its session's
    topic); made by :meth:`Hub.listen`, ended by :meth:`Hub.unlisten`.

    With ``max_bytes``, an owner that falls behind by more than that many payload bytes (it
    cannot write them out: its client stopped reading) is cut off, like a slow socket:
    ``overflowed`` is set, ``on_overflow`` is called once, what was queued is dropped,
    nothing more is queued and the iteration ends. The owner should then end its stream.
    (One event alone is always queued, whatever its size.)
    """

    __slots__ = ("key", "max_bytes", "on_overflow", "overflowed", "queue", "queued_bytes", "topic")

    def __init__(self, topic: str, key: str | None = None, max_bytes: int | None = None) -> None:
        self.topic = topic
        self.key = key
        self.max_bytes = max_bytes
        self.queue: asyncio.Queue[EncodedEvent] = asyncio.Queue()
        self.queued_bytes = 0
        self.overflowed = False
        self.on_overflow: Callable[[], Any] | None = None

    def offer(self, event: EncodedEvent) -> None:
        """Queue ``event`` if it is for this listener and the owner is not too far behind."""
        if self.overflowed or (self.key is not None and event.key != self.key):
            return
        size = len(event.payload_json)
        limit = self.max_bytes
        if limit is not None and self.queued_bytes and self.queued_bytes + size > limit:
            self.overflowed = True
            while not self.queue.empty():  # not empty: so no one is waiting on it
                self.queue.get_nowait()
            self.queued_bytes = 0
            if self.on_overflow is not None:
                self.on_overflow()
            return
        self.queued_bytes += size
        self.queue.put_nowait(event)

    def __aiter__(self) -> TopicListener:
        return self

    async def __anext__(self) -> EncodedEvent:
        if self.overflowed:
            raise StopAsyncIteration
        event = await self.queue.get()
        self.queued_bytes -= len(event.payload_json)
        return event


class Hub:
    """One per process (per event loop): see the module docstring."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(4)
        self.loop = asyncio.get_running_loop()
        self.layer = get_channel_layer()
        #: Other processes can only exist behind a shared (Redis) channel layer.
        self.shared = not isinstance(self.layer, InMemoryChannelLayer)
        self.outbox = Outbox(self.layer)
        self.channel_name: str | None = None
        self.connections: dict[str, Connection] = {}
        #: Sockets the ASGI server has not yet reported gone (what the drain waits for).
        self._sockets: set[str] = set()
        self.topics: dict[str, set[str]] = {}
        #: topic → its non-socket subscribers (Hub.listen); empty on the fan-out hot path.
        self.listeners: dict[str, set[TopicListener]] = {}
        self.presence_entries: dict[str, dict[str, Any]] = {}
        #: The same entries serialised once each, for the hello-ok snapshot.
        self.presence_json: dict[str, str] = {}
        self.stats = Stats()
        #: Collects closed connections' and ended runs' cyclic garbage (gateway/memory.py).
        self.collector = memory.Collector(self.loop)
        self.shutting_down = False
        self.stopping = False
        self._pending_presence: list[dict[str, Any]] = []
        self._presence_flush: asyncio.TimerHandle | None = None
        self._last_presence_flush = 0.0
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._drained = asyncio.Event()
        self._drained.set()
        #: Per-process state of other apps (e.g. the run service's running tasks).
        self.services: dict[str, Any] = {}
        #: Awaited first on shutdown, while clients are still connected (finish runs).
        self.shutdown_hooks: list[Callable[[], Awaitable[Any]]] = []
        #: name → handler for control messages other processes send to this hub.
        self.control_handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}

    # lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Join the channel layer and start the timers."""
        outage.quiet_unretrieved(self.loop)
        self.channel_name = await self.layer.new_channel("gw.hub.")
        try:
            await self._join_groups()
        except outage.ERRORS as exc:  # Redis is down: serve anyway; the receive loop rejoins
            outage.redis_state.failed(exc, "joining the channel layer")
        policy = settings.WINGMAN.policy
        loops = {
            "hub-receive": self._receive_loop(),
            "hub-outbox": self.outbox.run(),
            "hub-tick": self._every(policy.tick_interval_ms / 1000, self._tick),
            "hub-presence-tick": self._every(policy.presence_tick_ms / 1000, self._presence_tick),
            "hub-heartbeat": self._every(presence.HEARTBEAT_SECONDS, self._heartbeat),
            "hub-groups": self._every(GROUP_REFRESH_SECONDS, self._join_groups),
            "hub-gc": self._every(memory.CHECK_SECONDS, self._collect_garbage),
        }
        # Each in an empty context (as runs are): they outlive whoever started the hub, and a
        # first caller inside async_to_sync (a sync view: POST /api/runs) has asgiref's
        # CurrentThreadExecutor in its context, shut once that call returns; every
        # sync_to_async of a timer (cache writes) would fail for the life of the process.
        self._tasks = [
            asyncio.create_task(coro, name=name, context=contextvars.Context())
            for name, coro in loops.items()
        ]
        logger.debug("hub %s started on %s", self.id, self.channel_name)

    async def stop(self) -> None:
        """Leave the channel layer and forget this process's presence."""
        self.stopping = True
        with contextlib.suppress(Exception):
            await self.flush_presence()
            await self.outbox.drain()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await presence.remove_process(self.id)
            await cache.adelete(_hub_key(self.id))
            await self.layer.group_discard(ALL_GROUP, self.channel_name)
            for topic in {*self.topics, *self.listeners}:
                await self.layer.group_discard(topic_group(topic), self.channel_name)
        _, stuck = await asyncio.wait(self._tasks, timeout=2) if self._tasks else (None, ())
        for task in stuck:
            logger.warning("hub task %s did not stop", task.get_name())
        self._tasks = []

    async def shutdown(self, reason: str, *, grace_seconds: float = 3.0) -> None:
        """Drain: tell every client, close it with 1012, wait for the sockets to go."""
        self.shutting_down = True
        for hook in self.shutdown_hooks:
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

    async def _join_groups(self) -> None:
        """(Re)join our groups: memberships expire, and vanish if Redis restarts."""
        await cache.aset(_hub_key(self.id), self.channel_name, timeout=_HUB_KEY_TTL)
        await self.layer.group_add(ALL_GROUP, self.channel_name)
        for topic in {*self.topics, *self.listeners}:
            await self.layer.group_add(topic_group(topic), self.channel_name)

    # connections -----------------------------------------------------------------------
    def new_conn_id(self) -> str:
        return f"{self.id}-{secrets.token_hex(6)}"

    def add(self, conn: Connection) -> None:
        """A socket opened (not yet authenticated)."""
        self.connections[conn.conn_id] = conn
        self._sockets.add(conn.conn_id)
        self._drained.clear()
        self.stats.connections_total += 1

    def socket_closed(self, conn: Connection) -> None:
        """The ASGI server reported the socket gone (the shutdown drain waits for this)."""
        self._sockets.discard(conn.conn_id)
        if not self._sockets:
            self._drained.set()

    def established(self, conn: Connection, entry: dict[str, Any]) -> None:
        """A connection finished its handshake: it is now present (unless already closed)."""
        if conn.conn_id not in self.connections:
            return
        self.presence_entries[conn.conn_id] = entry
        self.presence_json[conn.conn_id] = dumps(entry)
        self._presence_changed({**entry, "reason": "connect"})

    async def unregister(self, conn: Connection) -> None:
        """A connection closed: drop it, its presence and its topics. The presence goes
        first and every topic is left even when one fails (Redis down): nothing of a
        closed connection may stay listed."""
        if self.connections.pop(conn.conn_id, None) is not None:
            self.collector.ended()
        entry = self.presence_entries.pop(conn.conn_id, None)
        self.presence_json.pop(conn.conn_id, None)
        if entry is not None:
            self._presence_changed({**entry, "reason": "disconnect", "ts": now_ms()})
        for topic in list(conn.topics):
            try:
                await self.leave_topic(conn, topic)
            except Exception as exc:
                # Only the channel-layer group is left behind: events for the topic may
                # still reach this hub, which has no socket for them.
                logger.warning("%s left %s, but not its group: %r", conn.conn_id, topic, exc)

    async def join_topic(self, conn: Connection, topic: str) -> None:
        if conn.conn_id not in self.connections:
            return  # closed meanwhile (e.g. a run's follow-up after the socket went)
        members = self.topics.setdefault(topic, set())
        first = not members and topic not in self.listeners
        # Recorded before the await, so closing meanwhile leaves the topic again (and a
        # failed group_add is retried by the group refresh).
        members.add(conn.conn_id)
        conn.topics.add(topic)
        if first:
            await self.layer.group_add(topic_group(topic), self.channel_name)

    async def leave_topic(self, conn: Connection, topic: str) -> None:
        conn.topics.discard(topic)
        members = self.topics.get(topic)
        if members is None:
            return
        members.discard(conn.conn_id)
        if not members:
            del self.topics[topic]
            if topic not in self.listeners:
                await self.layer.group_discard(topic_group(topic), self.channel_name)

    async def listen(
        self, topic: str, *, key: str | None = None, max_bytes: int | None = None
    ) -> TopicListener:
        """Subscribe a :class:`TopicListener` to ``topic`` (its events with ``key``, at most
        ``max_bytes`` of them unread); always :meth:`unlisten` it."""
        listener = TopicListener(topic, key, max_bytes)
        first = topic not in self.topics and topic not in self.listeners
        # Registered before the await, so a socket leaving the topic meanwhile keeps the group.
        self.listeners.setdefault(topic, set()).add(listener)
        if first:
            await self.layer.group_add(topic_group(topic), self.channel_name)
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
                await self.layer.group_discard(topic_group(topic), self.channel_name)

    def _notify(self, topic: str, event: EncodedEvent) -> None:
        for listener in self.listeners.get(topic, ()):
            listener.offer(event)

    @property
    def established_count(self) -> int:
        return len(self.presence_entries)

    # delivery --------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping:
                    return
                if outage.is_outage(exc):
                    outage.redis_state.failed(exc, "receiving from the channel layer")
                else:
                    logger.exception("channel layer receive failed; retrying")
                await self._rejoin()
                continue
            if message.get("type") != ENVELOPE_TYPE:
                logger.warning(
                    "hub ignored a channel-layer message of type %r", message.get("type")
                )
                continue
            try:
                await self._deliver_envelope(message)
            except Exception:
                logger.exception("event delivery failed")

    async def _rejoin(self) -> None:
        """Retry (with backoff) until the groups are joined again: a Redis that restarted
        without persistence has forgotten them (design/reliability.md #4)."""
        backoff = 0.1
        while not self.stopping:
            await asyncio.sleep(backoff)
            try:
                await self._join_groups()
            except Exception as exc:
                if not outage.is_outage(exc):
                    logger.exception("rejoining the channel-layer groups failed")
                # at most a second: events sent to the groups meanwhile miss this process
                backoff = min(backoff * 2, REJOIN_MAX_SECONDS)
                continue
            outage.redis_state.answered()
            return

    async def _deliver_envelope(self, message: dict[str, Any]) -> None:
        if "control" in message:
            handler = self.control_handlers.get(message["control"])
            if handler is None:
                logger.warning("no handler for control message %r", message["control"])
            else:
                await handler(message.get("data") or {})
            return
        if message.get("origin") == self.id:
            return  # already delivered locally by deliver()
        event = EncodedEvent.from_envelope(message)
        await self._send_each(self._targets(message), event)
        if self.listeners and "topic" in message:
            self._notify(message["topic"], event)

    def _targets(self, route: dict[str, Any]) -> list[Connection]:
        """This process's connections a routed event is for."""
        conns = self.connections
        if "to" in route:
            return [conns[c] for c in route["to"] if c in conns]
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
        if not self.shared:
            return
        envelope = event.envelope(origin=self.id, **route)
        if "to" in route:
            await self._send_to_remote(route["to"], envelope)
        elif "topic" in route:
            self.outbox.put_group(topic_group(route["topic"]), envelope)
        else:
            self.outbox.put_group(ALL_GROUP, envelope)

    async def _send_to_remote(self, conn_ids: list[str], envelope: dict[str, Any]) -> None:
        remote: dict[str, list[str]] = {}
        for conn_id in conn_ids:
            if conn_id not in self.connections:
                remote.setdefault(conn_id.split("-", 1)[0], []).append(conn_id)
        for hub_id, ids in remote.items():
            channel = await cache.aget(_hub_key(hub_id))
            if channel:
                self.outbox.put_channel(channel, {**envelope, "to": ids})

    async def send_control(self, hub_id: str, name: str, data: dict[str, Any]) -> bool:
        """Ask another process's hub (or this one) to act, e.g. cancel a run it owns."""
        if hub_id == self.id:
            handler = self.control_handlers.get(name)
            if handler is not None:
                await handler(data)
            return handler is not None
        channel = await cache.aget(_hub_key(hub_id)) if self.shared else None
        if not channel:
            return False
        self.outbox.put_channel(
            channel, {"type": ENVELOPE_TYPE, "control": name, "data": data, "origin": self.id}
        )
        return True

    async def fan_out(self, event: EncodedEvent) -> int:
        """Deliver to every local established connection that wants the event."""
        return await self._send_each(list(self.connections.values()), event)

    async def _send_each(self, targets: list[Connection], event: EncodedEvent) -> int:
        sent = 0
        for conn in targets:
            text = conn.render_event(event)
            if text is None:
                continue
            try:
                await conn.send_event(text)
                sent += 1
            except Exception:
                logger.debug("send to %s failed", conn.conn_id, exc_info=True)
        self.stats.events_delivered += sent
        return sent

    # presence --------------------------------------------------------------------------
    def _presence_changed(self, change: dict[str, Any]) -> None:
        """Queue a delta; the first change flushes at once, a burst within the window coalesces."""
        self._pending_presence.append(change)
        if self._presence_flush is not None:
            return
        since = time.monotonic() - self._last_presence_flush
        delay = 0.0 if since >= PRESENCE_COALESCE_SECONDS else PRESENCE_COALESCE_SECONDS - since
        self._presence_flush = self.loop.call_later(delay, self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._presence_flush = None
        self.spawn(self.flush_presence())

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

    async def flush_presence(self) -> None:
        """Store this process's presence, bump the version, publish the batched delta."""
        from gateway import events

        async with self._flush_lock:
            changes, self._pending_presence = self._pending_presence, []
            self._last_presence_flush = time.monotonic()
            if not changes:
                return
            # Publish first: clients should not wait for the cache write of the full list.
            try:
                version = await presence.bump_version()
            except outage.ERRORS as exc:
                self._presence_failed(changes, exc)
                return
            if outage.redis_state.answered():  # an outage ended: rejoin what it may have lost
                self.spawn(self._join_groups())
            sv = {"presence": version, "health": presence.HEALTH_VERSION}
            await events.publish(
                ev.PRESENCE, {"entries": changes, "stateVersion": sv}, state_version=sv
            )
            await presence.store_process(self.id, self.presence_entries)

    def _presence_failed(self, changes: list[dict[str, Any]], exc: BaseException) -> None:
        """Redis is down: keep the changes (the last one per connection, so they stay
        bounded) and publish them when it answers again."""
        outage.redis_state.failed(exc, "publishing presence")
        latest: dict[Any, dict[str, Any]] = {}
        for change in [*changes, *self._pending_presence]:
            latest.pop(change.get("connId"), None)
            latest[change.get("connId")] = change
        self._pending_presence = list(latest.values())
        if self._presence_flush is None and not self.stopping:
            self._presence_flush = self.loop.call_later(PRESENCE_RETRY_SECONDS, self._spawn_flush)

    async def _heartbeat(self) -> None:
        await presence.store_process(self.id, self.presence_entries)
        if self.shared and await cache.aget(_hub_key(self.id)) is None:
            # Redis restarted empty (no persistence): our group memberships went with it.
            logger.info("hub %s: its channel-layer groups are gone; joining them again", self.id)
            await self._join_groups()
        if outage.redis_state.answered():
            await self._join_groups()

    async def all_presence(self) -> list[dict[str, Any]]:
        return await presence.list_entries(self.id, self.presence_entries)

    async def presence_snapshot(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Every process's presence entries and ``stateVersion``."""
        return await presence.snapshot(self.id, self.presence_entries)

    async def presence_snapshot_json(self) -> tuple[str, dict[str, int]]:
        """:meth:`presence_snapshot` with the entries as one JSON array (hello-ok)."""
        return await presence.snapshot_json(self.id, self.presence_entries, self.presence_json)

    # timers ----------------------------------------------------------------------------
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
