"""The routine services: validation (nothing saved on bad input), revisions, and the
django-celery-beat rows every path leaves behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)

from agents.models import Session
from gateway.protocol.errors import ErrorCode, GatewayError
from routines import selectors
from routines.models import Routine
from routines.services import (
    routine_create,
    routine_delete,
    routine_set_enabled,
    routine_update,
)
from tests.routines.conftest import make_routine

pytestmark = pytest.mark.django_db


def beat_rows() -> tuple[int, int, int, int]:
    return (
        PeriodicTask.objects.count(),
        CrontabSchedule.objects.count(),
        IntervalSchedule.objects.count(),
        ClockedSchedule.objects.count(),
    )


def task_of(routine: Routine) -> PeriodicTask:
    return PeriodicTask.objects.get(name=f"routine:{routine.pk}")


def test_create_cron_leaves_one_enabled_task_with_its_crontab(agent):
    routine = make_routine()
    task = task_of(routine)
    assert task.task == "routines.fire"
    assert json.loads(task.kwargs) == {"routine_id": routine.pk}
    assert task.enabled and not task.one_off
    assert task.interval is None and task.clocked is None
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "0",
        "9",
        "*",
        "*",
        "1,2,3,4,5",
    )
    assert str(cron.timezone) == "Europe/Berlin"
    assert routine.revision == 1
    assert routine.next_run_at is not None and routine.next_run_at > datetime.now(UTC)
    assert routine.next_run_at.astimezone(cron.timezone).hour == 9
    assert beat_rows() == (1, 1, 0, 0)
    assert PeriodicTasks.last_change() is not None


def test_two_routines_share_a_crontab_and_deleting_one_keeps_it(agent):
    first, second = make_routine(), make_routine(name="Other")
    assert beat_rows() == (2, 1, 0, 0)
    routine_delete(routine_id=first.pk)
    assert beat_rows() == (1, 1, 0, 0)
    routine_delete(routine_id=second.pk)
    assert beat_rows() == (0, 0, 0, 0)
    assert Routine.objects.count() == 0


def test_interval_and_one_time(agent):
    every = make_routine(schedule_kind="every", cron=None, every="15m")
    task = task_of(every)
    assert task.interval.every == 900 and task.interval.period == "seconds"
    assert json.loads(task.kwargs)["anchor"] == every.anchor_at.isoformat()
    at_time = datetime.now(UTC) + timedelta(days=1)
    once = make_routine(
        schedule_kind="at", cron=None, at=at_time.isoformat(), delete_after_run=True
    )
    task = task_of(once)
    assert task.one_off and task.clocked.clocked_time == at_time
    assert once.next_run_at == at_time
    assert beat_rows() == (2, 0, 1, 1)


def test_update_schedule_switches_rows_and_drops_unused(agent):
    routine = make_routine()
    updated = routine_update(routine_id=routine.pk, schedule_kind="every", every=60, cron=None)
    assert updated.revision == 2
    task = task_of(updated)
    assert task.crontab is None and task.interval.every == 60
    assert beat_rows() == (1, 0, 1, 0)
    at_time = datetime.now(UTC) + timedelta(hours=3)
    updated = routine_update(routine_id=routine.pk, schedule_kind="at", at=at_time)
    task = task_of(updated)
    assert task.clocked.clocked_time == at_time and task.one_off
    assert beat_rows() == (1, 0, 0, 1)
    updated = routine_update(
        routine_id=routine.pk, schedule_kind="cron", cron="@hourly", timezone="UTC"
    )
    assert task_of(updated).crontab.hour == "*"
    assert beat_rows() == (1, 1, 0, 0)


def test_update_other_fields_keeps_schedule_and_anchor(agent):
    routine = make_routine(schedule_kind="every", cron=None, every=300)
    task_before = task_of(routine)
    updated = routine_update(routine_id=routine.pk, prompt="new prompt", name="Renamed")
    assert updated.anchor_at == routine.anchor_at
    task = task_of(updated)
    assert task.interval_id == task_before.interval_id
    assert "Renamed" in task.description


def test_enable_disable(agent):
    routine = make_routine()
    disabled = routine_set_enabled(routine_id=routine.pk, enabled=False)
    assert not task_of(disabled).enabled and disabled.next_run_at is None
    assert selectors.next_runs(routine=disabled) == []
    enabled = routine_set_enabled(routine_id=routine.pk, enabled=True)
    assert task_of(enabled).enabled and enabled.next_run_at is not None
    assert len(selectors.next_runs(routine=enabled)) == 5
    off = routine_update(routine_id=routine.pk, enabled=False)
    assert not task_of(off).enabled
    assert off.revision == 4


@pytest.mark.parametrize(
    ("fields", "error_field", "words"),
    [
        ({"cron": "99 99 * * *"}, "cron", "minute"),
        ({"cron": "bad cron"}, "cron", "5 fields"),
        ({"cron": "0 0 * * * *"}, "cron", "got 6"),
        ({"timezone": "Mars/Base"}, "timezone", "Mars/Base"),
        ({"name": " "}, "name", "required"),
        ({"prompt": ""}, "prompt", "required"),
        ({"agent_id": "ghost"}, "agent_id", "ghost"),
        ({"schedule_kind": "every", "every": "soon"}, "every", "soon"),
        ({"schedule_kind": "at", "at": "2001-01-01T00:00Z"}, "at", "past"),
        (
            {"target_kind": "session", "target_session_key": "agent:research:nope"},
            "target_session_key",
            "no session",
        ),
        ({"target_kind": "elsewhere"}, "target_kind", "unknown"),
        ({"delete_after_run": True}, "delete_after_run", "one-time"),
    ],
)
def test_bad_input_saves_nothing(agent, fields, error_field, words):
    with pytest.raises(ValidationError) as caught:
        make_routine(**fields)
    assert words in " ".join(caught.value.message_dict[error_field])
    assert Routine.objects.count() == 0
    assert beat_rows() == (0, 0, 0, 0)


def test_bad_update_changes_nothing(agent):
    routine = make_routine()
    with pytest.raises(ValidationError) as caught:
        routine_update(routine_id=routine.pk, cron="61 * * * *", name="changed")
    assert "cron" in caught.value.message_dict
    fresh = Routine.objects.get(pk=routine.pk)
    assert (fresh.name, fresh.cron, fresh.revision) == ("News", "0 9 * * 1-5", 1)
    assert task_of(fresh).crontab.hour == "9"
    with pytest.raises(ValidationError):
        routine_update(routine_id=routine.pk, color="red")


def test_revision_conflict_and_not_found(agent):
    routine = make_routine()
    routine_update(routine_id=routine.pk, expected_revision=1, name="v2")
    with pytest.raises(GatewayError) as caught:
        routine_update(routine_id=routine.pk, expected_revision=1, name="v3")
    assert caught.value.code == ErrorCode.CONFLICT
    assert Routine.objects.get(pk=routine.pk).name == "v2"
    for call in (
        lambda: routine_update(routine_id="nope", name="x"),
        lambda: routine_delete(routine_id="nope"),
        lambda: routine_set_enabled(routine_id="nope", enabled=True),
    ):
        with pytest.raises(GatewayError) as caught:
            call()
        assert caught.value.code == ErrorCode.NOT_FOUND


def test_targets(agent):
    routine = make_routine()
    assert selectors.routine_session(routine) == f"agent:research:routine:{routine.pk}"
    main = make_routine(target_kind="main")
    assert selectors.routine_session(main) == "agent:research:main"
    Session.objects.create(key="agent:research:chat", agent=agent)
    other = make_routine(target_kind="session", target_session_key="agent:research:chat")
    assert selectors.routine_session(other) == "agent:research:chat"


def test_default_timezone(agent, settings):
    settings.WINGMAN_TIMEZONE = "America/New_York"
    routine = routine_create(name="n", agent_id="research", prompt="p", cron="@daily")
    assert routine.timezone == "America/New_York"
    assert str(task_of(routine).crontab.timezone) == "America/New_York"


def test_list_paging_and_filters(agent):
    for i in range(7):
        make_routine(name=f"r{i}", enabled=i % 2 == 0)
    page = selectors.routine_list(limit=3)
    assert [r.name for r in page.items] == ["r0", "r1", "r2"] and page.total == 7
    assert page.next_offset == 3
    last = selectors.routine_list(offset=6, limit=3)
    assert [r.name for r in last.items] == ["r6"] and last.next_offset is None
    assert selectors.routine_list(enabled=False).total == 3
    assert selectors.routine_list(query="r5").total == 1
    assert selectors.routine_list(agent_id="other").total == 0
