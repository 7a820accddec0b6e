"""Ordered delivery of envelopes to the other processes through the channel layer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from gateway.state import outage

logger = logging.getLogger(__name__)


class Outbox:
    """Ordered delivery of envelopes to the other gateway processes.

    The hub delivers to its own sockets first, then queues the envelope here; one task
    sends them in order, so a slow channel layer never delays local clients.
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()

    def put_group(self, group: str, envelope: dict[str, Any]) -> None:
        self.queue.put_nowait(("group", group, envelope))

    def put_channel(self, channel: str, envelope: dict[str, Any]) -> None:
        self.queue.put_nowait(("channel", channel, envelope))

    async def run(self) -> None:
        while True:
            kind, target, envelope = await self.queue.get()
            try:
                if kind == "group":
                    await self.layer.group_send(target, envelope)
                else:
                    await self.layer.send(target, envelope)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(target, exc)
            finally:
                self.queue.task_done()

    @staticmethod
    def _failed(target: str, exc: Exception) -> None:
        if outage.is_outage(exc):  # logged once per outage, not once per event
            outage.redis_state.failed(exc, "sending events to the other processes")
        else:
            logger.exception(
                "channel layer send to %s failed; event lost for other processes", target
            )

    async def drain(self) -> None:
        """Wait (at most two seconds) until everything queued was handed to the layer."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), 2.0)
