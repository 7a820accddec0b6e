"""Ordered delivery of envelopes to the other processes through the channel layer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from gateway.delivery.encoded import ENVELOPE_TYPE
from gateway.state import outage

logger = logging.getLogger(__name__)

#: At most this many envelopes travel in one channel-layer message.
MAX_BATCH = 256
#: While envelopes come faster than one send (a burst), a batch leaves at most this long
#: after the previous one left, so it fills (fewer, larger channel-layer messages: each
#: costs a script on the sender, Redis and the receiver, whatever its size). Outside a
#: burst a batch leaves at once, so a sparse stream is never held back.
SEND_INTERVAL_SECONDS = 0.001
#: A headless publisher yields to the sender at most this often (a yield is a loop pass).
YIELD_SECONDS = 0.0002
#: A headless publisher (a worker's run) waits above ``HIGH_WATER`` queued envelopes until
#: the sender is down to ``LOW_WATER``.
HIGH_WATER = 2048
LOW_WATER = 256

Item = tuple[str, str, dict[str, Any]]


def batch_envelope(envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    """One channel-layer message carrying ``envelopes`` in order (a single one as itself)."""
    if len(envelopes) == 1:
        return envelopes[0]
    return {"type": ENVELOPE_TYPE, "batch": envelopes}


def unbatch(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The envelopes a channel-layer message carries, in order."""
    batch = message.get("batch")
    return batch if isinstance(batch, list) else [message]


def _runs(items: list[Item]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Consecutive items for the same target, merged (the order of sends is kept)."""
    runs: list[tuple[str, str, list[dict[str, Any]]]] = []
    for kind, target, envelope in items:
        if runs and runs[-1][0] == kind and runs[-1][1] == target:
            runs[-1][2].append(envelope)
        else:
            runs.append((kind, target, [envelope]))
    return runs


class Outbox:
    """Ordered delivery of envelopes to the other gateway processes.

    The hub delivers to its own sockets first, then queues the envelope here; one task
    sends them in order, so a slow channel layer never delays local clients. What queued
    up while a send was in flight leaves together, so a run streaming faster than one
    Redis round trip per event (a Celery worker's run, watched on a gateway) keeps up
    instead of falling behind by seconds. On the Redis layer a batch is ONE channel-layer
    message per receiving process (``batch``), whatever the number of topics in it, and
    ONE round trip: a script reads the groups' members and writes the messages (a room
    swarm's broadcasts to 100 rooms used to cost four round trips each, one after
    another, and capped the delivery rate); on another layer, consecutive envelopes for
    one group or channel travel together.
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        #: A layer that routes (``gateway.state.layer``) sends a batch as one message per
        #: process; another sends one channel-layer message per group or channel.
        self.routed = hasattr(layer, "group_members") and hasattr(layer, "send_each")
        #: ... and a batch for groups goes in one round trip (``send_groups``).
        self.packs = self.routed and hasattr(layer, "packs_batches") and layer.packs_batches()
        #: The seat's own channel (set once it has one): never sent to.
        self.own_channel = ""
        self._below = asyncio.Event()
        self._yielded = 0.0

    async def room(self) -> None:
        """Yield to the sender while envelopes wait; past ``HIGH_WATER`` wait until it has
        sent them down to ``LOW_WATER`` (a publisher faster than the layer is slowed down
        instead of queueing without bound)."""
        if self.queue.empty():
            return
        now = time.monotonic()
        if now - self._yielded >= YIELD_SECONDS:
            self._yielded = now
            await asyncio.sleep(0)
        if self.queue.qsize() > HIGH_WATER:
            self._below.clear()
            await self._below.wait()

    def put_group(self, group: str, envelope: dict[str, Any]) -> None:
        self.queue.put_nowait(("group", group, envelope))

    def put_channel(self, channel: str, envelope: dict[str, Any]) -> None:
        self.queue.put_nowait(("channel", channel, envelope))

    async def run(self) -> None:
        burst = False
        left = 0.0
        while True:
            items = [await self.queue.get()]
            if burst and SEND_INTERVAL_SECONDS:  # a burst is on: let the batch fill a little
                wait = left + SEND_INTERVAL_SECONDS - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            while len(items) < MAX_BATCH and not self.queue.empty():
                items.append(self.queue.get_nowait())
            burst = len(items) > 1
            left = time.monotonic()
            try:
                if self.routed:
                    await self._send_routed(items)
                else:
                    for kind, target, envelopes in _runs(items):
                        await self._send(kind, target, batch_envelope(envelopes))
            finally:
                for _ in items:
                    self.queue.task_done()
                if self.queue.qsize() <= LOW_WATER:
                    self._below.set()

    async def _send_routed(self, items: list[Item]) -> None:
        """Everything taken, as ONE message per channel (process) the groups have now with
        the envelopes for it, in order (the sender's own channel left out: it delivered
        them already): one script on one Redis host (``send_groups``); else, or with
        envelopes for a channel among them, in two steps whatever the number of groups:
        the groups' channels, then the messages."""
        try:
            if self.packs and all(kind == "group" for kind, _, _ in items):
                full = await self.layer.send_groups(
                    [(group, envelope) for _, group, envelope in items],
                    batch_type=ENVELOPE_TYPE,
                    capacity_of=self.own_channel,
                    exclude=self.own_channel,
                )
                if full:
                    logger.warning("%d channels full: their events were dropped", full)
                return
            groups = sorted({target for kind, target, _ in items if kind == "group"})
            members = await self.layer.group_members(groups) if groups else {}
            per_channel: dict[str, list[dict[str, Any]]] = {}
            for kind, target, envelope in items:
                for channel in members.get(target, ()) if kind == "group" else (target,):
                    if channel != self.own_channel:
                        per_channel.setdefault(channel, []).append(envelope)
            if per_channel:
                messages = {c: batch_envelope(e) for c, e in per_channel.items()}
                if full := await self.layer.send_each(messages):
                    logger.warning("%d channels full: their events were dropped", full)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed("the other processes", exc)

    async def _send(self, kind: str, target: str, message: dict[str, Any]) -> None:
        try:
            if kind == "group":
                await self.layer.group_send(target, message)
            else:
                await self.layer.send(target, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(target, exc)

    @staticmethod
    def _failed(target: str, exc: Exception) -> None:
        if outage.is_outage(exc):  # logged once per outage, not once per event
            outage.redis_state.failed(exc, "sending events to the other processes")
        else:
            logger.exception(
                "channel layer send to %s failed; events lost for other processes", target
            )

    async def drain(self) -> None:
        """Wait (at most two seconds) until everything queued was handed to the layer."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), 2.0)
