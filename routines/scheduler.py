"""Celery beat's scheduler for routines, and the embedded scheduler of ``wingman gateway
run``.

:class:`RoutineScheduler` is django-celery-beat's ``DatabaseScheduler`` (it reads the
PeriodicTask rows ``services/beat.py`` keeps in step, noticing changes through
``PeriodicTasks``), with two differences for ``routines.fire`` entries: whether one is due
is decided by ``routines/schedules.py`` in the routine's zone (DST-correct: a wall time that
exists twice runs once, one that does not exist runs once, shifted), and each fire names
the scheduled time it is for (``scheduled_at``) and the beat's clock (``fired_at``), so
every beat names one scheduled time the same way and the run service's guards hold; and
the fires due at a tick leave in batches, ``routines.fire_batch`` with ``FIRE_BATCH`` of
them (the rest once the tick finds nothing more due), not a Celery message each.

Embedded (no broker): :func:`scheduler_forever` (an extension's background work) runs the
same scheduler in the gateway process; ``routines.fire_batch`` is applied eagerly and hands
each fire to the gateway's event loop (``tasks.set_embedded_loop``), where the run executes
and streams like any other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from celery.schedules import schedstate
from django.conf import settings
from django.db.models import Q
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from django_celery_beat.utils import NEVER_CHECK_TIMEOUT

from gateway.delivery.seat import current_seat
from routines.schedules import Schedule, build
from routines.services.beat import FIRE_BATCH_TASK, FIRE_TASK

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Due routines' fires per Celery message (``routines.fire_batch``): one message, one lock
#: round trip and one task slot for this many, and still enough messages for every worker
#: process to take its share of a minute at which many are due.
FIRE_BATCH = 10


def _utc_now() -> datetime:
    return datetime.now(UTC)


def schedule_of_task(model) -> Schedule:
    """A routine's schedule read back from its PeriodicTask and schedule row."""
    if model.crontab_id is not None:
        c = model.crontab
        expr = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
        return build(kind="cron", cron=expr, timezone=str(c.timezone))
    if model.interval_id is not None:
        anchor = json.loads(model.kwargs or "{}").get("anchor")
        seconds = int(model.interval.schedule.run_every.total_seconds())
        start = datetime.fromisoformat(anchor) if anchor else model.date_changed
        return build(kind="every", every=seconds, timezone="UTC", anchor=start)
    return build(kind="at", at=model.clocked.clocked_time, timezone="UTC")


class RoutineEntry(ModelEntry):
    """A PeriodicTask as beat sees it; ``routines.fire`` entries are due by the routine's
    own schedule."""

    clock: Clock = staticmethod(_utc_now)

    def __init__(self, model, app=None):
        super().__init__(model, app=app)
        self.due_at: datetime | None = None
        self.fired_at: datetime | None = None

    def _default_now(self):
        return self.clock()

    def default_now(self):
        return self.clock()

    def is_due(self):
        if self.task != FIRE_TASK:
            return super().is_due()
        if not self.model.enabled:
            return schedstate(False, 5.0)
        now = self.clock()
        schedule = schedule_of_task(self.model)
        if schedule.kind == "at":
            if self.model.total_run_count > 0 or self.last_run_at >= schedule.at:
                return schedstate(False, NEVER_CHECK_TIMEOUT)
            due = schedule.at
        else:
            due = schedule.next_after(self.last_run_at.astimezone(UTC))
        if due is None:
            return schedstate(False, NEVER_CHECK_TIMEOUT)
        if due > now:
            return schedstate(False, (due - now).total_seconds())
        self.due_at = schedule.latest_at_or_before(now) or due
        self.fired_at = now
        following = schedule.next_after(now)
        return schedstate(True, (following - now).total_seconds() if following else 3600.0)


class RoutineScheduler(DatabaseScheduler):
    """``DatabaseScheduler`` deciding routines' due times (see the module doc). ``clock``:
    the time source (a test's controlled clock; default: the real UTC time)."""

    Entry = RoutineEntry

    def __init__(self, *args, clock: Clock | None = None, **kwargs):
        self._fires: list[dict] = []
        if clock is not None:
            self.Entry = type(
                "ClockedRoutineEntry", (RoutineEntry,), {"clock": staticmethod(clock)}
            )
        super().__init__(*args, **kwargs)

    def schedules_equal(self, old_schedules, new_schedules):
        """Whether beat must rebuild its heap. ``DatabaseScheduler`` replaces its schedule
        only when it re-reads it, and then says so (``_heap_invalidated``); in between, only
        ``reserve`` swaps an entry for its next run, whose editable fields are the same. So
        the entry-by-entry comparison Celery makes on every tick (all N entries, for each of
        N routines due at one minute: O(N²), 2 of the 3 s beat took to send 500) is skipped."""
        if self._heap_invalidated or old_schedules is None or new_schedules is None:
            return super().schedules_equal(old_schedules, new_schedules)
        return old_schedules.keys() == new_schedules.keys()

    def _get_crontab_exclude_query(self):
        """Read every enabled task: which hour a routine runs in is decided per entry, in its
        own zone (the parent's hour window assumes fixed offsets)."""
        return Q(pk__in=[])

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        """A due routine's fire joins this tick's batch (sent at ``FIRE_BATCH`` fires, and
        when the tick finds nothing more due); other tasks are sent as Celery sends them."""
        if entry.task != FIRE_TASK or getattr(entry, "due_at", None) is None:
            return super().apply_async(entry, producer, advance, **kwargs)
        entry = self.reserve(entry) if advance else entry
        self._fires.append(
            {
                **entry.kwargs,
                "scheduled_at": entry.due_at.isoformat(),
                "fired_at": entry.fired_at.isoformat(),
            }
        )
        if len(self._fires) >= FIRE_BATCH:
            self.send_fires(producer)
        self._tasks_since_sync += 1
        if self.should_sync():
            self._do_sync()
        return None

    def send_fires(self, producer=None) -> None:
        """Send the fires batched so far as one ``routines.fire_batch`` (a failed send is
        logged, as beat logs one of a task: those times are not retried)."""
        fires, self._fires = self._fires, []
        if not fires:
            return
        options = {"producer": producer or self.producer, "headers": {"celery_beat_task": True}}
        task = self.app.tasks.get(FIRE_BATCH_TASK)
        try:
            if task is not None:
                task.apply_async((fires,), **options)
            else:  # (as Celery's beat sends a task it has not imported)
                self.send_task(FIRE_BATCH_TASK, (fires,), {}, **options)
        except Exception:
            logger.exception("routines: could not send %d fires", len(fires))

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        if delay != 0:  # nothing more due now: what this tick batched leaves
            self.send_fires()
        return delay

    def close(self):
        self.send_fires()
        super().close()


def embedded_enabled() -> bool:
    """Does this process run the scheduler itself? ``WINGMAN_ROUTINES_SCHEDULER`` on/off;
    auto: when there is no broker (the embedded default)."""
    mode = settings.WINGMAN_ROUTINES_SCHEDULER
    if mode == "auto":
        return bool(settings.CELERY_TASK_ALWAYS_EAGER)
    return mode == "on"


def make_embedded(loop: asyncio.AbstractEventLoop, clock: Clock | None = None) -> RoutineScheduler:
    """The scheduler for this process; fires are handed to ``loop``."""
    from routines import tasks  # registers routines.fire and routines.fire_batch
    from wingman.celery import app

    tasks.set_embedded_loop(loop)
    return RoutineScheduler(app=app, clock=clock)


async def scheduler_forever() -> None:
    """Background work of a gateway process: run beat's scheduler here (embedded only; never
    in a Celery worker, whose fires come from the one beat)."""
    seat = current_seat()
    if not embedded_enabled() or (seat is not None and seat.headless):
        return
    loop = asyncio.get_running_loop()
    # One thread: the scheduler's database connection stays in it.
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wingman-beat")
    try:
        scheduler = await loop.run_in_executor(pool, make_embedded, loop)
        logger.info("routines: embedded scheduler started")
        while True:
            try:
                delay = await loop.run_in_executor(pool, scheduler.tick)
            except Exception:
                logger.exception("routines: scheduler tick failed")
                delay = 1.0
            await asyncio.sleep(min(max(delay, 0.0), scheduler.max_interval))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
