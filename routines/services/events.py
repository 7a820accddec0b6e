"""The ``routine`` event, published once the change is committed, from any process: the
gateway's loop (embedded), a worker's runtime loop, or a thread of either."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from django.db import transaction

from gateway.delivery import publish
from gateway.delivery.hub import current_hub
from gateway.delivery.seat import current_seat
from gateway.protocol.cron import cron_event
from gateway.protocol.events import CRON, ROUTINE, RoutinePayload
from routines.models import Routine

logger = logging.getLogger(__name__)

_pending: set[asyncio.Task] = set()


def ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def payload(action: str, routine: Routine, **extra: Any) -> dict[str, Any]:
    """The event's payload for ``routine`` (extra: status, run_id, reason, ... by name)."""
    return RoutinePayload(
        action=action,
        routine_id=routine.pk,
        name=routine.name,
        agent_id=routine.agent_id,
        enabled=routine.enabled,
        next_run_at_ms=ms(routine.next_run_at),
        ts=int(time.time() * 1000),
        **extra,
    ).model_dump(by_alias=True, exclude_none=True)


def _loop() -> asyncio.AbstractEventLoop | None:
    """The loop that owns this process's delivery: a worker's seat, else the gateway hub."""
    seat = current_seat()
    if seat is not None and seat.headless:
        return seat.loop
    hub = current_hub()
    return hub.loop if hub is not None else None


def _send(data: dict[str, Any]) -> None:
    loop = _loop()
    if loop is None or loop.is_closed():
        # No hub here (a CLI process, a test without one): nobody to tell in this process.
        logger.debug("routine event not published (no hub in this process): %s", data)
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task = loop.create_task(_publish(data))
        _pending.add(task)  # referenced until it ends
        task.add_done_callback(_pending.discard)
        task.add_done_callback(_log_failure)
    else:
        future = asyncio.run_coroutine_threadsafe(_publish(data), loop)
        future.add_done_callback(_log_failure)


async def _publish(data: dict[str, Any]) -> None:
    """The canonical ``routine`` event, and the same news as OpenClaw's ``cron`` event
    (one dialect serves both clients, so both names are published)."""
    await publish.publish(ROUTINE, data)
    await publish.publish(CRON, cron_event(data))


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("routine event not published: %r", future.exception())


def publish_after_commit(action: str, routine: Routine, **extra: Any) -> None:
    """Publish ``routine`` (``action``) once the current transaction commits."""
    data = payload(action, routine, **extra)
    transaction.on_commit(lambda: _send(data))
