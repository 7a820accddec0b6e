"""Driving the real beat scheduler (``RoutineScheduler``, django-celery-beat's
DatabaseScheduler) under a controlled clock, in-process: its fires go through the real
``routines.fire_batch`` task (applied eagerly, as in the embedded default) to this test's
loop."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from agents.models import Message
from routines.models import RoutineRun, RoutineStatus
from routines.scheduler import RoutineScheduler, make_embedded


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


async def new_beat(clock: Clock) -> RoutineScheduler:
    loop = asyncio.get_running_loop()
    scheduler = await sync_to_async(make_embedded, thread_sensitive=False)(loop, clock)
    # no final write-back at interpreter exit: the test database is gone by then
    scheduler._finalize.cancel()
    return scheduler


def _tick_all(scheduler: RoutineScheduler) -> None:
    """Tick until nothing more is due now (``tick`` sends one due task per call)."""
    for _ in range(1000):
        if scheduler.tick() != 0:
            return
    raise AssertionError("the scheduler kept finding due tasks")


async def tick(*schedulers: RoutineScheduler, pause: float = 0.05) -> None:
    for scheduler in schedulers:
        # its own thread, as the embedded scheduler does (a fire it hands to this loop
        # uses the loop's database thread meanwhile)
        await sync_to_async(_tick_all, thread_sensitive=False)(scheduler)
    await asyncio.sleep(pause)  # let the fires handed to this loop start


def _open_records() -> int:
    return RoutineRun.objects.filter(status=RoutineStatus.RUNNING).count()


async def settled(timeout: float = 20.0, pause: float = 0.05) -> None:
    """Until every fire's run ended and was recorded (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await asyncio.sleep(pause)
    while await database_sync_to_async(_open_records)():
        assert loop.time() < deadline, "routine runs did not end in time"
        await asyncio.sleep(0.05)


@database_sync_to_async
def records(routine_id: str) -> list[RoutineRun]:
    return list(RoutineRun.objects.filter(routine_id=routine_id).order_by("id"))


@database_sync_to_async
def thread(session_key: str) -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(session__key=session_key)
        .order_by("position")
        .values_list("role", "content")
    )
