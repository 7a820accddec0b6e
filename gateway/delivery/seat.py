"""This process's one seat on the channel layer.

Every process that sends or receives events has exactly one seat (per event loop): a gateway
process (its :class:`~gateway.delivery.hub.Hub` sits on it) and a Celery worker that
executes runs (a seat without sockets). The seat owns:

- one channel-layer channel and the groups the process needs (``gw.all`` and topic groups;
  a worker's seat needs none), re-joined periodically because memberships expire and
  vanish when Redis restarts;
- the ordered :class:`~gateway.delivery.outbox.Outbox` to the other processes;
- control messages: ``send_control(seat_id, name, data)`` reaches the handlers that the
  apps registered (``gateway/delivery/extensions.py``), e.g. the run service's
  ``run.cancel``;
- a key that maps the seat id to its channel (refreshed; how control messages find it).

What arrives for the process (event envelopes) goes to ``on_envelope``: the hub's fan-out in
a gateway, nothing in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.cache import cache

from gateway.delivery import extensions, memory
from gateway.delivery.encoded import ALL_GROUP, ENVELOPE_TYPE, EncodedEvent, topic_group
from gateway.delivery.outbox import Outbox, unbatch
from gateway.state import outage

logger = logging.getLogger(__name__)

#: Group memberships and the liveness key are refreshed this often...
REFRESH_SECONDS = 10
#: ... and the liveness key outlives a missed refresh or two.
_KEY_TTL = 60
#: Longest pause between two attempts to rejoin the groups while Redis is unreachable.
REJOIN_MAX_SECONDS = 1.0

#: Called with each envelope that arrived and whether it is the last of what arrived together.
EnvelopeHandler = Callable[[dict[str, Any], bool], Awaitable[None]]


def _seat_key(seat_id: str) -> str:
    return f"gw:hub:{seat_id}"


async def _ignore(_message: dict[str, Any], _last: bool) -> None:
    return None


class Seat:
    """See the module docstring."""

    def __init__(self, *, on_envelope: EnvelopeHandler = _ignore, headless: bool = False) -> None:
        self.id = secrets.token_hex(4)
        #: No sockets here (a worker): events only go to the other processes.
        self.headless = headless
        self.loop = asyncio.get_running_loop()
        self.layer = get_channel_layer()
        #: Other processes can only exist behind a shared (Redis) channel layer.
        self.shared = not isinstance(self.layer, InMemoryChannelLayer)
        self.outbox = Outbox(self.layer)
        self.channel_name: str | None = None
        self.on_envelope = on_envelope
        self.stopping = False
        #: A headless seat has no sockets: it does not take the events for every socket
        #: (``gw.all``); control messages come to its own channel.
        self._groups: set[str] = set() if headless else {ALL_GROUP}
        self._tasks: list[asyncio.Task] = []
        self.control_handlers = extensions.control_handlers()
        #: Collects closed sockets' and ended runs' cyclic garbage (delivery/memory.py).
        self.collector = memory.Collector(self.loop)

    async def start(self) -> None:
        """Take a channel, join the groups, start receiving and sending (with Redis down,
        serve anyway: the receive loop joins once it answers)."""
        self.channel_name = await self.layer.new_channel("gw.hub.")
        self.outbox.own_channel = self.channel_name
        try:
            await self.refresh()
        except outage.ERRORS as exc:
            outage.redis_state.failed(exc, "joining the channel layer")
        # Empty contexts: these outlive whoever started the seat (see Hub.start).
        loops = {
            "seat-receive": self._receive_loop(),
            "seat-outbox": self.outbox.run(),
            "seat-refresh": self._refresh_loop(),
        }
        self._tasks = [
            asyncio.create_task(coro, name=name, context=contextvars.Context())
            for name, coro in loops.items()
        ]

    async def stop(self) -> None:
        """Hand over what is queued, leave the groups, stop the tasks."""
        self.stopping = True
        with contextlib.suppress(Exception):
            await self.outbox.drain()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await cache.adelete(_seat_key(self.id))
            for group in self._groups:
                await self.layer.group_discard(group, self.channel_name)
        _, stuck = await asyncio.wait(self._tasks, timeout=2) if self._tasks else (None, ())
        for task in stuck:
            logger.warning("seat task %s did not stop", task.get_name())
        self._tasks = []

    # groups ------------------------------------------------------------------------------
    async def join(self, topic: str) -> None:
        group = topic_group(topic)
        self._groups.add(group)
        await self.layer.group_add(group, self.channel_name)

    async def leave(self, topic: str) -> None:
        group = topic_group(topic)
        self._groups.discard(group)
        await self.layer.group_discard(group, self.channel_name)

    async def refresh(self) -> None:
        """(Re)join our groups and refresh the liveness key."""
        await cache.aset(_seat_key(self.id), self.channel_name, timeout=_KEY_TTL)
        groups = list(self._groups)
        many = getattr(self.layer, "group_add_many", None)
        if many is not None:  # one round trip (gateway/state/layer.py)
            await many(groups, self.channel_name)
            return
        for group in groups:
            await self.layer.group_add(group, self.channel_name)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except Exception as exc:
                if outage.is_outage(exc):
                    outage.redis_state.failed(exc, "refreshing the channel-layer groups")
                else:
                    logger.warning("channel layer refresh failed (%s); retrying", exc)

    async def ensure_joined(self) -> None:
        """Join again when Redis restarted empty (no persistence: our memberships went with
        it, design/reliability.md #4) or an outage just ended."""
        if self.shared and await cache.aget(_seat_key(self.id)) is None:
            logger.info("seat %s: its channel-layer groups are gone; joining them again", self.id)
            await self.refresh()
        elif outage.redis_state.answered():
            await self.refresh()

    # sending -----------------------------------------------------------------------------
    async def deliver(self, event: EncodedEvent, route: dict[str, Any] | None = None) -> None:
        """A headless seat's delivery: every socket is in another process. A run streams
        from a loop that may never block (a fast model), so the publisher yields while the
        outbox has work: the outbox's sends progress as the events come, instead of after
        the run, and past its high-water mark the publisher waits for it."""
        self.send_remote(event, route or {})
        await self.outbox.room()

    def send_remote(self, event: EncodedEvent, route: dict[str, Any]) -> None:
        """Queue ``event`` for the other processes that need it (in order)."""
        if not self.shared:
            return
        envelope = event.envelope(origin=self.id, **route)
        if "topic" in route:
            self.outbox.put_group(topic_group(route["topic"]), envelope)
        else:
            self.outbox.put_group(ALL_GROUP, envelope)

    async def send_to_seat(self, seat_id: str, envelope: dict[str, Any]) -> bool:
        """Queue an envelope for one other process; False when it is not known (gone)."""
        channel = await cache.aget(_seat_key(seat_id)) if self.shared else None
        if not channel:
            return False
        self.outbox.put_channel(channel, envelope)
        return True

    async def send_control(self, seat_id: str, name: str, data: dict[str, Any]) -> bool:
        """Ask a process (this one included) to act, e.g. cancel a run it executes."""
        if seat_id == self.id:
            return await self._control(name, data)
        envelope = {"type": ENVELOPE_TYPE, "control": name, "data": data, "origin": self.id}
        return await self.send_to_seat(seat_id, envelope)

    async def _control(self, name: str, data: dict[str, Any]) -> bool:
        handler = self.control_handlers.get(name)
        if handler is None:
            logger.warning("no handler for control message %r", name)
            return False
        await handler(data)
        return True

    # receiving ---------------------------------------------------------------------------
    async def _receive(self) -> list[dict[str, Any]]:
        """What waits on the seat's channel: all of it in one go where the layer can
        (``gateway.state.layer``), else one message."""
        receive_many = getattr(self.layer, "receive_many", None)
        if receive_many is not None:
            return await receive_many(self.channel_name)
        return [await self.layer.receive(self.channel_name)]

    async def _receive_loop(self) -> None:
        while True:
            try:
                messages = await self._receive()
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
            for index, message in enumerate(messages, 1):
                await self._received(message, last=index == len(messages))

    async def _rejoin(self) -> None:
        """Retry (with backoff) until the groups are joined again: a Redis that restarted
        without persistence has forgotten them (design/reliability.md #4)."""
        backoff = 0.1
        while not self.stopping:
            await asyncio.sleep(backoff)
            try:
                await self.refresh()
            except Exception as exc:
                if not outage.is_outage(exc):
                    logger.exception("rejoining the channel-layer groups failed")
                # at most a second: events sent to the groups meanwhile miss this process
                backoff = min(backoff * 2, REJOIN_MAX_SECONDS)
                continue
            outage.redis_state.answered()
            return

    async def _received(self, message: dict[str, Any], *, last: bool = True) -> None:
        """The envelopes of one channel-layer message (``last``: of what arrived together;
        the handler is told which envelope ends it)."""
        if message.get("type") != ENVELOPE_TYPE:
            logger.warning("ignored a channel-layer message of type %r", message.get("type"))
            return
        envelopes = unbatch(message)
        for index, envelope in enumerate(envelopes, 1):
            await self._envelope(envelope, last=last and index == len(envelopes))

    async def _envelope(self, message: dict[str, Any], *, last: bool = True) -> None:
        try:
            if "control" in message:
                await self._control(message["control"], message.get("data") or {})
            elif message.get("origin") != self.id:  # our own were delivered locally
                await self.on_envelope(message, last)
        except Exception:
            logger.exception("handling a channel-layer message failed")


_seat: Seat | None = None


def install(seat: Seat) -> None:
    """Make ``seat`` this process's seat (the hub's, or a worker's)."""
    global _seat
    _seat = seat


def current_seat() -> Seat | None:
    """This process's seat, if one was started in the running loop."""
    if _seat is None:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _seat
    return _seat if _seat.loop is loop else None


def forget(seat: Seat) -> None:
    global _seat
    if _seat is seat:
        _seat = None
