"""Celery tasks of the routines app: beat sends the due routines of a tick in batches
(``routines.fire_batch``, ``scheduler.FIRE_BATCH`` fires each); ``routines.fire`` fires one
(what beat sent before batches, and a message of it still queued)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime

from gateway.server import worker
from routines.services import routine_fire
from routines.services.beat import FIRE_BATCH_TASK, FIRE_TASK
from routines.services.fire import fire_locks
from wingman.celery import app

logger = logging.getLogger(__name__)

_embedded: asyncio.AbstractEventLoop | None = None


def set_embedded_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """The gateway loop that executes fires in this process (the embedded scheduler)."""
    global _embedded
    _embedded = loop


def embedded_loop() -> asyncio.AbstractEventLoop | None:
    return _embedded if _embedded is not None and not _embedded.is_closed() else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("routine fire failed", exc_info=future.exception())


Fire = tuple[str, datetime | None, datetime | None]  # routine id, scheduled time, fired at


def _fire(task, items: list[Fire]) -> None:
    """The body of both tasks. Embedded: each fire is handed to the gateway's loop, which
    executes it. A worker: the locks in this task's thread (it keeps its cache connection
    from task to task, where each fire on the loop would open one: Django's cache handler is
    local to a thread's context), owned by the message's id (delivered again after its
    worker died, it takes its own again); then the fires whose lock it holds on the worker's
    loop, concurrently, their database calls on the loop's pool threads and persistent
    connections (not here, where Celery's Django fixup closes the connection after every
    task); returns once all started."""
    loop = embedded_loop()
    if loop is not None:
        for routine_id, when, at in items:
            started = routine_fire(routine_id=routine_id, scheduled_at=when, at=at)
            asyncio.run_coroutine_threadsafe(started, loop).add_done_callback(_log_failure)
        return
    owner = task.request.id or uuid.uuid4().hex
    taken = iter(fire_locks([(r, when) for r, when, _ in items if when is not None], owner=owner))
    # (a time whose lock another message has is left out: a second beat's)
    go = [(r, when, at) for r, when, at in items if when is None or next(taken)]
    if go:
        worker.run(lambda: _fire_all(go))


@app.task(name=FIRE_TASK, ignore_result=True, bind=True)
def fire(
    self,
    routine_id: str,
    scheduled_at: str | None = None,
    fired_at: str | None = None,
    anchor: str | None = None,
) -> None:
    """Fire one scheduled time of a routine (``scheduled_at``, from beat; without it: the
    latest at or before ``fired_at``/now). Starts its run in this worker (it streams to
    every gateway) and returns; the run's end is recorded when it ends. In the embedded
    default the gateway's own loop executes it. ``anchor`` is the interval grid's start,
    read by the scheduler (ignored here)."""
    _fire(self, [(routine_id, _time(scheduled_at), _time(fired_at))])


@app.task(name=FIRE_BATCH_TASK, ignore_result=True, bind=True)
def fire_batch(self, fires: list[dict]) -> None:
    """Fire several routines' scheduled times (each item: ``fire``'s keyword arguments), as
    ``fire`` does each, with one Celery message and one lock round trip for all of them;
    their runs start concurrently on the worker's loop, and the task returns once all
    started (or were refused: each fire's guards are its own)."""
    _fire(
        self,
        [(f["routine_id"], _time(f.get("scheduled_at")), _time(f.get("fired_at"))) for f in fires],
    )


async def _fire_all(items: list[Fire]) -> None:
    fires = [
        routine_fire(routine_id=r, scheduled_at=when, at=at, locked=when is not None)
        for r, when, at in items
    ]
    for (routine_id, _, _), result in zip(
        items, await asyncio.gather(*fires, return_exceptions=True), strict=True
    ):
        if isinstance(result, BaseException):
            logger.error("routine %s: fire failed", routine_id, exc_info=result)
