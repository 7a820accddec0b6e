"""The only writer of django-celery-beat's rows for routines: one PeriodicTask per routine
(named ``routine:<id>``, task ``routines.fire``) and the crontab, interval or clocked
schedule it points to, kept in step with the routine on every create, update, delete,
enable and disable. ``PeriodicTask.save()``/``delete()`` bump ``PeriodicTasks`` (the
DatabaseScheduler re-reads within its sync interval); bulk changes call
``PeriodicTasks.update_changed()`` themselves.
"""

from __future__ import annotations

import json

from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)

from routines.models import Routine, ScheduleKind
from routines.schedules import parse_cron

#: The Celery task that fires a routine (``routines/tasks.py``), by name.
FIRE_TASK = "routines.fire"
#: The Celery task beat sends instead, with the fires of several due routines.
FIRE_BATCH_TASK = "routines.fire_batch"


def task_name(routine_id: str) -> str:
    return f"routine:{routine_id}"


def _schedule_row(routine: Routine) -> dict:
    """The PeriodicTask's schedule fields for the routine (a crontab, interval or clocked
    row; shared crontab and interval rows are reused)."""
    if routine.schedule_kind == ScheduleKind.CRON:
        minute, hour, dom, month, dow = parse_cron(routine.cron).fields()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=dom,
            month_of_year=month,
            day_of_week=dow,
            timezone=routine.timezone,
        )
        return {"crontab": crontab, "interval": None, "clocked": None, "one_off": False}
    if routine.schedule_kind == ScheduleKind.EVERY:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=routine.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"crontab": None, "interval": interval, "clocked": None, "one_off": False}
    clocked = ClockedSchedule.objects.create(clocked_time=routine.at)
    return {"crontab": None, "interval": None, "clocked": clocked, "one_off": True}


def _kwargs(routine: Routine) -> str:
    kwargs: dict = {"routine_id": routine.pk}
    if routine.schedule_kind == ScheduleKind.EVERY and routine.anchor_at is not None:
        kwargs["anchor"] = routine.anchor_at.isoformat()
    return json.dumps(kwargs)


def _drop_unused(task: PeriodicTask | None, keep: dict | None = None) -> None:
    """Delete the schedule rows ``task`` pointed to that no PeriodicTask uses any more."""
    if task is None:
        return
    keep = keep or {}
    for field, model in (
        ("crontab", CrontabSchedule),
        ("interval", IntervalSchedule),
        ("clocked", ClockedSchedule),
    ):
        row_id = getattr(task, f"{field}_id")
        if row_id is None or (keep.get(field) is not None and keep[field].pk == row_id):
            continue
        if not PeriodicTask.objects.filter(**{f"{field}_id": row_id}).exists():
            model.objects.filter(pk=row_id).delete()


def sync(routine: Routine, *, schedule_changed: bool = True) -> PeriodicTask:
    """Make the routine's PeriodicTask match it (inside the caller's transaction).

    ``schedule_changed``: the schedule itself changed, so the row's schedule is replaced and
    its ``last_run_at`` cleared (the scheduler counts from now, not from an old run).
    """
    task = PeriodicTask.objects.filter(name=task_name(routine.pk)).first()
    previous = None
    if task is None:
        task = PeriodicTask(name=task_name(routine.pk), task=FIRE_TASK)
        schedule_changed = True
    if schedule_changed:
        previous = PeriodicTask(
            crontab_id=task.crontab_id, interval_id=task.interval_id, clocked_id=task.clocked_id
        )
        for field, value in _schedule_row(routine).items():
            setattr(task, field, value)
        task.last_run_at = None
        task.total_run_count = 0
    task.kwargs = _kwargs(routine)
    task.enabled = routine.enabled
    task.description = f"Routine {routine.name!r} (agent {routine.agent_id})"
    task.save()
    if previous is not None:
        _drop_unused(previous, keep={"crontab": task.crontab, "interval": task.interval})
    if routine.periodic_task_id != task.pk:
        Routine.objects.filter(pk=routine.pk).update(periodic_task=task)
        routine.periodic_task = task
    return task


def remove(routine_id: str) -> None:
    """Delete the routine's PeriodicTask and its schedule rows no other task uses."""
    task = PeriodicTask.objects.filter(name=task_name(routine_id)).first()
    if task is None:
        return
    task.delete()  # bumps PeriodicTasks
    _drop_unused(task)


def set_enabled_many(routine_ids: list[str], enabled: bool) -> None:
    """Enable or disable many routines' tasks in one statement (and tell the scheduler)."""
    names = [task_name(rid) for rid in routine_ids]
    fields = {"enabled": enabled}
    if not enabled:
        fields["last_run_at"] = None
    PeriodicTask.objects.filter(name__in=names).update(**fields)
    PeriodicTasks.update_changed()
