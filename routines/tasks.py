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


def _owner(task) -> str:
    """Whose locks: the message's id (the same when it is delivered again)."""
    return task.request.id or uuid.uuid4().hex


def _embedded_fire(routine_id: str, when: datetime | None, at: datetime | None) -> bool:
    """Hand a fire to the gateway loop that executes them in this process (the embedded
    scheduler); False when there is none (a worker)."""
    loop = embedded_loop()
    if loop is None:
        return False
    fire = routine_fire(routine_id=routine_id, scheduled_at=when, at=at)
    asyncio.run_coroutine_threadsafe(fire, loop).add_done_callback(_log_failure)
    return True


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

    when, at = _time(scheduled_at), _time(fired_at)
    if _embedded_fire(routine_id, when, at):
        return
    # The lock in this task's thread: it keeps its cache (Redis) connection from task to
    # task, where each fire on the loop would open one (Django's cache handler is local to
    # a thread's context). The rest on the worker's loop, its database calls on the loop's
    # pool threads and their persistent connections: not here, where Celery's Django
    # fixup closes the connection after every task (a new PostgreSQL connection per fire).
    if when is not None and not fire_locks([(routine_id, when)], owner=_owner(self))[0]:
        return  # another fire of this time has it (a second beat)
    worker.run(
        lambda: routine_fire(
            routine_id=routine_id, scheduled_at=when, at=at, locked=when is not None
        )
    )


@app.task(name=FIRE_BATCH_TASK, ignore_result=True, bind=True)
def fire_batch(self, fires: list[dict]) -> None:
    """Fire several routines' scheduled times (each item: ``fire``'s keyword arguments), as
    ``fire`` does each, with one Celery message and one lock round trip for all of them;
    their runs start concurrently on the worker's loop, and the task returns once all
    started (or were refused: each fire's guards are its own)."""
    items = [
        (f["routine_id"], _time(f.get("scheduled_at")), _time(f.get("fired_at"))) for f in fires
    ]
    if embedded_loop() is not None:
        for routine_id, when, at in items:
            _embedded_fire(routine_id, when, at)
        return
    timed = [(r, when) for r, when, _ in items if when is not None]
    taken = iter(fire_locks(timed, owner=_owner(self)))
    # (a time whose lock another message has is left out: a second beat's; this message's
    # own, when it is delivered again after its worker died, are taken again)
    go = [(r, when, at) for r, when, at in items if when is None or next(taken)]
    if go:
        worker.run(lambda: _fire_all(go))


async def _fire_all(items: list[tuple[str, datetime | None, datetime | None]]) -> None:
    fires = [
        routine_fire(routine_id=r, scheduled_at=when, at=at, locked=when is not None)
        for r, when, at in items
    ]
    for (routine_id, _, _), result in zip(
        items, await asyncio.gather(*fires, return_exceptions=True), strict=True
    ):
        if isinstance(result, BaseException):
            logger.error("routine %s: fire failed", routine_id, exc_info=result)
