"""Subscribers to a topic that are not sockets (e.g. a Server-Sent Events response)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gateway.delivery.encoded import EncodedEvent


class TopicListener:
    """A subscriber to a topic that is not a socket (e.g. a Server-Sent Events response).

    ``async for event in listener`` yields the topic's events (:class:`EncodedEvent`) in
    order, only those with ``key`` when one is given (a run's events on its session's
    topic); made by :meth:`Hub.listen`, ended by :meth:`Hub.unlisten`.

    With ``want``, only the events it accepts are queued (e.g. a run's terminal event, so
    a follower waiting for it is not woken by every streamed chunk).

    With ``max_bytes``, an owner that falls behind by more than that many payload bytes (it
    cannot write them out: its client stopped reading) is cut off, like a slow socket:
    ``overflowed`` is set, ``on_overflow`` is called once, what was queued is dropped,
    nothing more is queued and the iteration ends. The owner should then end its stream.
    (One event alone is always queued, whatever its size.)
    """

    __slots__ = (
        "key",
        "max_bytes",
        "on_overflow",
        "overflowed",
        "queue",
        "queued_bytes",
        "topic",
        "want",
    )

    def __init__(
        self,
        topic: str,
        key: str | None = None,
        max_bytes: int | None = None,
        want: Callable[[EncodedEvent], bool] | None = None,
    ) -> None:
        self.topic = topic
        self.key = key
        self.max_bytes = max_bytes
        self.want = want
        self.queue: asyncio.Queue[EncodedEvent] = asyncio.Queue()
        self.queued_bytes = 0
        self.overflowed = False
        self.on_overflow: Callable[[], Any] | None = None

    def offer(self, event: EncodedEvent) -> None:
        """Queue ``event`` if it is for this listener and the owner is not too far behind."""
        if self.overflowed or (self.key is not None and event.key != self.key):
            return
        if self.want is not None and not self.want(event):
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
