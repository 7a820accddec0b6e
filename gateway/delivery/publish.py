"""The one place that publishes events (style.md: only services call this module, and it is
the only way an event reaches the channel layer).

An event is serialised once (:class:`~gateway.delivery.encoded.EncodedEvent`); delivery
crosses the channel layer once per process, and each process's hub fans it out to its local
sockets (design/performance.md).
"""

from __future__ import annotations

from typing import Any

from gateway.delivery.encoded import EncodedEvent
from gateway.delivery.hub import get_hub, running_hub
from gateway.delivery.seat import current_seat


async def _deliver(event: EncodedEvent, route: dict[str, Any] | None = None) -> None:
    hub = running_hub()  # a gateway process's (asked first: every event passes here)
    if hub is not None:
        await hub.deliver(event, route)
        return
    seat = current_seat()
    if seat is not None and seat.headless:  # a worker: no sockets of its own
        await seat.deliver(event, route)
    else:
        await (await get_hub()).deliver(event, route)


async def publish(name: str, payload: Any, *, state_version: dict[str, int] | None = None) -> None:
    """Send an event to every connection of every gateway process (subject to filters)."""
    await _deliver(EncodedEvent.build(name, payload, state_version))


async def publish_topic(
    topic: str, name: str, payload: Any, *, exclude: str | None = None, key: str | None = None
) -> None:
    """Send an event to the connections subscribed to ``topic`` on every process
    (``exclude``: a connection that should not get it, e.g. the one it came from;
    ``key``: what the event is about, e.g. the run id, for dialects that echo it)."""
    event = EncodedEvent.build(name, payload, targeted=True, key=key)
    route: dict[str, Any] = {"topic": topic}
    if exclude:
        route["exclude"] = exclude
    await _deliver(event, route)
