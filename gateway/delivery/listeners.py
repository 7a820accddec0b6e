"""Subscribers to a topic that are not sockets (e.g. a Server-Sent Events response)."""

from __future__ import annotations

import asyncio

from gateway.delivery.encoded import EncodedEvent


class TopicListener:
    """``async for event in listener`` yields the topic's events (:class:`EncodedEvent`) in
    order; made by :meth:`Hub.listen`, ended by :meth:`Hub.unlisten`. The queue is not
    bounded: the listener's owner drains it (a run's event stream is finite).
    """

    __slots__ = ("queue", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[EncodedEvent] = asyncio.Queue()

    def __aiter__(self) -> TopicListener:
        return self

    async def __anext__(self) -> EncodedEvent:
        return await self.queue.get()

    def put(self, event: EncodedEvent) -> None:
        self.queue.put_nowait(event)
