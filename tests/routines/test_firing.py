"""Firing routines through the real beat scheduler (controlled clock) and the real
``routines.fire_batch`` task, with the agent on the offline model: runs, thread growth,
batches, skips on overlap, two beats, downtime catch-up, DST, error counting and
auto-disable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.signals import task_prerun
from channels.db import database_sync_to_async
from django.core.cache import cache
from django_celery_beat.models import PeriodicTask

from agents.models import Agent, Run, RunSource, Session
from gateway.delivery.hub import reset_hub
from routines.models import Routine, RoutineStatus
from routines.services import routine_create, routine_fire, routine_run_now
from routines.services.fire import fire_lock, fire_locks, lock_key
from tests.routines.beat import Clock, new_beat, records, settled, thread, tick

pytestmark = pytest.mark.django_db(transaction=True)

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
async def agents(backend):
    await database_sync_to_async(Agent.objects.create)(id="research", model="wingman:echo")
    await database_sync_to_async(Agent.objects.create)(id="sloth", model="wingman:slow")
    yield
    await reset_hub()


create = database_sync_to_async(routine_create)


async def routine(**fields) -> Routine:
    fields.setdefault("name", "News")
    fields.setdefault("agent_id", "research")
    fields.setdefault("prompt", "summarise the news")
    fields.setdefault("timezone", "UTC")
    if "every" in fields:
        fields["schedule_kind"] = "every"
    else:
        fields.setdefault("cron", "0 9 * * *")
    return await create(**fields)


@database_sync_to_async
def reload(routine_id: str) -> Routine:
    return Routine.objects.get(pk=routine_id)


def next_at(hour: int, after: datetime) -> datetime:
    """The first ``hour``:00 UTC after ``after``."""
    moment = after.replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment if moment > after else moment + timedelta(days=1)


async def test_due_routine_runs_and_thread_grows_per_run(agents):
    daily = await routine(cron="0 9 * * *")
    clock = Clock(datetime.now(UTC))
    nine = next_at(9, clock.now)
    beat = await new_beat(clock)
    clock.now = nine - timedelta(seconds=30)
    await tick(beat)
    await settled()
    assert await records(daily.pk) == []  # not due yet
    key = f"agent:research:routine:{daily.pk}"
    for day in range(3):
        clock.now = nine + timedelta(days=day, seconds=1)
        await tick(beat)
        await settled()
        await tick(beat)  # the same minute again: nothing more
        await settled()
        messages = await thread(key)
        assert len(messages) == 2 * (day + 1)
        assert messages[-2:] == [
            ("user", "summarise the news"),
            ("assistant", "You said: summarise the news"),
        ]
    done = await records(daily.pk)
    assert [r.status for r in done] == ["ok"] * 3
    assert [r.scheduled_at.hour for r in done] == [9, 9, 9]
    runs = await database_sync_to_async(list)(Run.objects.filter(source=RunSource.ROUTINE))
    assert len(runs) == 3 and {r.id for r in runs} == {r.run_id for r in done}
    fresh = await reload(daily.pk)
    assert fresh.last_status == "ok" and fresh.last_run_id == done[-1].run_id
    assert fresh.consecutive_errors == 0 and fresh.last_duration_ms is not None
    session_name = await database_sync_to_async(lambda: Session.objects.get(key=key).name)()
    assert session_name == "Routine: News"


async def test_overlap_is_skipped_and_recorded(agents):
    slow = await routine(agent_id="sloth", prompt="/stream 40", every=60)
    beat = await new_beat(clock := Clock(datetime.now(UTC)))
    clock.advance(seconds=61)
    await tick(beat)
    first = await records(slow.pk)
    assert [r.status for r in first] == [RoutineStatus.RUNNING]
    clock.advance(seconds=60)
    await tick(beat)  # the first run (2 s of tokens) is still going
    both = await records(slow.pk)
    assert [r.status for r in both] == [RoutineStatus.RUNNING, RoutineStatus.SKIPPED]
    assert both[1].reason.startswith("overlap") and first[0].run_id in both[1].reason
    assert both[1].run_id is None
    await settled()
    assert [r.status for r in await records(slow.pk)] == ["ok", "skipped"]
    assert len(await thread(f"agent:sloth:routine:{slow.pk}")) == 2


async def test_two_beats_run_one_time_once(agents):
    minutely = await routine(cron="* * * * *")
    clock = Clock(datetime.now(UTC).replace(second=0, microsecond=0))
    beats = [await new_beat(clock), await new_beat(clock)]
    for _ in range(3):
        clock.advance(minutes=1)
        await tick(*beats)
        await settled()
    done = await records(minutely.pk)
    assert [r.status for r in done] == ["ok"] * 3
    assert len({r.scheduled_at for r in done}) == 3
    assert len(await thread(f"agent:research:routine:{minutely.pk}")) == 6


async def test_the_database_is_the_backstop_when_the_lock_expired(agents):
    hourly = await routine(cron="@hourly")
    at = datetime.now(UTC).replace(minute=0, second=5, microsecond=0)
    scheduled = at.replace(second=0)
    first = await routine_fire(routine_id=hourly.pk, scheduled_at=scheduled, at=at)
    assert first.ran
    await database_sync_to_async(cache.delete)(lock_key(hourly.pk, scheduled))
    again = await routine_fire(routine_id=hourly.pk, scheduled_at=scheduled, at=at)
    assert not again.ran and again.reason == "duplicate"
    await settled()
    assert len(await records(hourly.pk)) == 1


async def test_fire_locks_take_each_time_once(backend):
    """A message's locks (one round trip on Redis): taken once per time; the same message
    delivered again (its worker died) takes its own again, another message (a second beat's)
    and a single fire's lock do not."""
    at = datetime.now(UTC).replace(second=0, microsecond=0)
    later = at + timedelta(minutes=1)
    lock = database_sync_to_async(fire_locks)
    assert await lock([("a", at), ("b", at)], owner="m1") == [True, True]
    assert await lock([("a", at), ("a", later), ("c", at)], owner="m2") == [False, True, True]
    assert await lock([("a", at), ("b", at), ("c", at)], owner="m1") == [True, True, False]
    assert await database_sync_to_async(fire_lock)("b", at) is False
    assert await database_sync_to_async(fire_lock)("b", later) is True
    assert await lock([("b", later)], owner="m1") == [False]


async def test_one_tick_sends_its_due_routines_in_batches(agents):
    """25 routines due at one minute: beat sends three ``routines.fire_batch`` messages
    (10, 10, 5 fires), and each routine runs once."""
    due = [await routine(name=f"r{i}", cron="0 9 * * *") for i in range(25)]
    clock = Clock(datetime.now(UTC))
    beat = await new_beat(clock)
    sent: list[tuple[str, int]] = []

    def seen(sender=None, args=(), **_kwargs):
        sent.append((sender.name, len(args[0]) if sender.name == "routines.fire_batch" else 1))

    task_prerun.connect(seen, weak=False)
    try:
        clock.now = next_at(9, clock.now) + timedelta(seconds=1)
        await tick(beat)
    finally:
        task_prerun.disconnect(seen)
    assert sent == [
        ("routines.fire_batch", 10),
        ("routines.fire_batch", 10),
        ("routines.fire_batch", 5),
    ]
    await settled()
    for each in due:
        assert [r.status for r in await records(each.pk)] == ["ok"]


async def test_downtime_catch_up_once_within_the_deadline(agents, settings):
    settings.WINGMAN_ROUTINES_STARTING_DEADLINE = 300
    five = await routine(cron="*/5 * * * *")
    clock = Clock(datetime.now(UTC).replace(second=0, microsecond=0))
    beat = await new_beat(clock)
    clock.now = clock.now.replace(minute=clock.now.minute - clock.now.minute % 5)
    clock.advance(minutes=5, seconds=1)
    await tick(beat)
    await settled()
    # beat is down for two hours; it comes back 2 minutes after a scheduled time
    clock.advance(hours=2, minutes=2)
    back = await new_beat(clock)
    await tick(back)
    await settled()
    await tick(back)
    done = await records(five.pk)
    assert [r.status for r in done] == ["ok", "ok"]
    assert done[1].scheduled_at == clock.now.replace(second=0) - timedelta(minutes=2)


async def test_downtime_beyond_the_deadline_is_skipped(agents, settings):
    settings.WINGMAN_ROUTINES_STARTING_DEADLINE = 300
    hourly = await routine(cron="0 * * * *")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    clock = Clock(start)
    clock.advance(hours=3, minutes=10)  # beat was down; the 3:00 run is 10 minutes late
    beat = await new_beat(clock)
    await tick(beat)
    await settled()
    done = await records(hourly.pk)
    assert [r.status for r in done] == ["skipped"]
    assert done[0].reason.startswith("too-late") and "300 s" in done[0].reason
    assert done[0].scheduled_at == start + timedelta(hours=3)
    assert await thread(f"agent:research:routine:{hourly.pk}") == []
    clock.advance(minutes=52)  # the next hour on time
    await tick(beat)
    await settled()
    assert [r.status for r in await records(hourly.pk)] == ["skipped", "ok"]


async def walk(beat, clock: Clock, until: datetime, step_minutes: int) -> None:
    while clock.now < until:
        clock.advance(minutes=step_minutes)
        await tick(beat, pause=0.002)
        await settled(pause=0)  # simulated days pass faster than a run: let each end
    await settled()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # spring forward 2027-03-28 02:00 CET → 03:00 CEST: 02:30 does not exist
        (
            utc(2027, 3, 27, 12),
            utc(2027, 3, 30, 12),
            ["03-28 03:30 CEST", "03-29 02:30 CEST", "03-30 02:30 CEST"],
        ),
        # fall back 2027-10-31 03:00 CEST → 02:00 CET: 02:30 happens twice
        (utc(2027, 10, 30, 12), utc(2027, 11, 1, 12), ["10-31 02:30 CEST", "11-01 02:30 CET"]),
    ],
)
async def test_dst_daily_0230_in_berlin_runs_once_a_day(agents, settings, start, end, expected):
    settings.WINGMAN_ROUTINES_STARTING_DEADLINE = 900
    nightly = await routine(cron="30 2 * * *", timezone="Europe/Berlin")
    clock = Clock(start)
    beat = await new_beat(clock)
    await tick(beat)  # the times between its creation (now) and start: long past, skipped
    await settled()
    before = {r.pk for r in await records(nightly.pk)}
    assert all(r.status == "skipped" for r in await records(nightly.pk))
    await walk(beat, clock, end, step_minutes=10)
    done = [r for r in await records(nightly.pk) if r.pk not in before]
    assert [r.status for r in done] == ["ok"] * len(expected)
    local = [r.scheduled_at.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for r in done]
    assert local == expected


async def test_failures_are_counted_and_disable_after_n(agents, settings):
    settings.WINGMAN_ROUTINES_MAX_ERRORS = 3
    failing = await routine(prompt="/fail the feed is down", every=60)
    clock = Clock(datetime.now(UTC))
    beat = await new_beat(clock)
    for n in (1, 2):
        clock.advance(seconds=60)
        await tick(beat)
        await settled()
        fresh = await reload(failing.pk)
        assert fresh.enabled and fresh.consecutive_errors == n
        assert fresh.last_status == "error" and "the feed is down" in fresh.last_error
    clock.advance(seconds=60)
    await tick(beat)
    await settled()
    fresh = await reload(failing.pk)
    assert not fresh.enabled and fresh.consecutive_errors == 3
    assert "3 failed runs in a row" in fresh.disabled_reason
    assert "the feed is down" in fresh.disabled_reason
    task = await database_sync_to_async(PeriodicTask.objects.get)(name=f"routine:{failing.pk}")
    assert not task.enabled
    clock.advance(seconds=60)
    await tick(beat)
    await settled()
    assert len(await records(failing.pk)) == 3


async def test_a_success_resets_the_count(agents, settings):
    failing = await routine(prompt="/fail once")
    result = await routine_run_now(routine_id=failing.pk)
    assert result.ran
    await settled()
    assert (await reload(failing.pk)).consecutive_errors == 1
    await database_sync_to_async(Routine.objects.filter(pk=failing.pk).update)(prompt="fine")
    assert (await routine_run_now(routine_id=failing.pk)).ran
    await settled()
    fresh = await reload(failing.pk)
    assert fresh.consecutive_errors == 0 and fresh.last_error == "" and fresh.last_status == "ok"


async def test_run_now_force_and_due(agents):
    daily = await routine(cron="0 9 * * *", enabled=False)
    forced = await routine_run_now(routine_id=daily.pk, mode="force")
    assert forced.ran and forced.session_key == f"agent:research:routine:{daily.pk}"
    await settled()
    not_due = await routine_run_now(routine_id=daily.pk, mode="due")
    assert not not_due.ran and not_due.reason == "disabled"
    missing = await routine_run_now(routine_id="nope")
    assert not missing.ran and missing.reason == "not-found"


async def test_one_time_routine_runs_once_and_deletes_itself(agents):
    # (django-celery-beat reads a clocked task within 5 minutes of its time)
    when = (datetime.now(UTC) + timedelta(minutes=2)).replace(microsecond=0)
    once = await routine(schedule_kind="at", at=when.isoformat(), delete_after_run=True)
    keep = await routine(schedule_kind="at", at=when.isoformat(), name="Keep")
    clock = Clock(datetime.now(UTC))
    beat = await new_beat(clock)
    await tick(beat)
    assert await records(once.pk) == []
    clock.now = when + timedelta(seconds=2)
    await tick(beat)
    await settled()
    clock.advance(hours=1)
    await tick(beat)
    await settled()
    exists = database_sync_to_async(lambda pk: Routine.objects.filter(pk=pk).exists())
    assert not await exists(once.pk)
    assert not await database_sync_to_async(
        PeriodicTask.objects.filter(name=f"routine:{once.pk}").exists
    )()
    assert len(await thread(f"agent:research:routine:{once.pk}")) == 2  # the thread stays
    kept = await records(keep.pk)
    assert [r.status for r in kept] == ["ok"] and kept[0].scheduled_at == when
    assert (await reload(keep.pk)).next_run_at is None


async def test_a_fire_that_died_before_its_run_does_not_block_forever(agents):
    from routines.models import RoutineRun
    from routines.services.settle import UNSTARTED_SECONDS, settle_finished

    daily = await routine(cron="0 9 * * *")

    @database_sync_to_async
    def orphan(age: float) -> int:
        record = RoutineRun.objects.create(routine_id=daily.pk, trigger="manual")
        RoutineRun.objects.filter(pk=record.pk).update(
            created_at=datetime.now(UTC) - timedelta(seconds=age)
        )
        return record.pk

    fresh = await orphan(1)
    blocked = await routine_run_now(routine_id=daily.pk)
    assert not blocked.ran and blocked.reason == "overlap"  # a fire may still be starting
    await database_sync_to_async(RoutineRun.objects.filter(pk=fresh).delete)()
    await orphan(UNSTARTED_SECONDS + 5)
    result = await routine_run_now(routine_id=daily.pk)
    assert result.ran
    await settled()
    statuses = [(r.status, r.reason) for r in await records(daily.pk)]
    assert statuses[0] == ("skipped", statuses[0][1]) and statuses[0][1].startswith("overlap")
    assert statuses[1][0] == "error" and "stopped before the run" in statuses[1][1]
    assert statuses[2] == ("ok", "")
    assert (await reload(daily.pk)).consecutive_errors == 0
    await orphan(UNSTARTED_SECONDS + 5)
    assert await database_sync_to_async(settle_finished)() == 1
    assert (await reload(daily.pk)).consecutive_errors == 1
