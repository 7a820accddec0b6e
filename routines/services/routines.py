"""Creating, changing, enabling and deleting routines. Each write is one transaction that
also updates the routine's beat rows (``beat.py``) and, after commit, publishes ``routine``.

Bad input raises Django's ``ValidationError`` keyed by field (``name``, ``agent_id``,
``prompt``, ``cron``, ``every``, ``at``, ``timezone``, ``schedule_kind``, ``target_kind``,
``target_session_key``) and saves nothing; an unknown routine is ``GatewayError``
NOT_FOUND; a stale ``expected_revision`` is ``GatewayError`` CONFLICT.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, Session
from gateway.protocol.errors import ErrorCode, GatewayError
from routines import selectors
from routines.models import Routine, RoutineRun, ScheduleKind, TargetKind
from routines.schedules import Schedule, ScheduleError, build
from routines.services import beat
from routines.services.events import publish_after_commit

#: Fields ``routine_update`` accepts.
FIELDS = (
    "name",
    "description",
    "agent_id",
    "prompt",
    "enabled",
    "schedule_kind",
    "cron",
    "every",
    "at",
    "timezone",
    "delete_after_run",
    "target_kind",
    "target_session_key",
)
SCHEDULE_FIELDS = frozenset({"schedule_kind", "cron", "every", "at", "timezone"})
#: A one-time routine may be created this far in the past at most (then it is an error).
AT_PAST_GRACE = timedelta(seconds=60)


def now() -> datetime:
    return datetime.now(UTC)


def not_found(routine_id: str) -> GatewayError:
    return GatewayError(ErrorCode.NOT_FOUND, f"no routine {routine_id!r}")


def schedule_of(routine: Routine) -> Schedule:
    """The routine's parsed schedule (its stored fields are valid)."""
    return build(
        kind=routine.schedule_kind,
        timezone=routine.timezone,
        cron=routine.cron,
        every=routine.every_seconds,
        at=routine.at,
        anchor=routine.anchor_at,
    )


def target_key(routine: Routine) -> str:
    """The session a run of the routine goes to."""
    return selectors.routine_session(routine)


def ensure_session(routine: Routine) -> str:
    """The routine's target session exists (a routine thread, named ``Routine: <name>``, is
    created with the routine, so clients can open and subscribe to it before its first
    run); returns its key."""
    key = target_key(routine)
    if not Session.objects.filter(key=key).exists():
        agent = Agent.objects.get(pk=routine.agent_id)
        name = session_name(routine)
        Session.objects.get_or_create(key=key, defaults={"agent": agent, "name": name})
    return key


def session_name(routine: Routine) -> str:
    """The name of the routine's target session when it is the routine's own thread."""
    thread = routine.target_kind == TargetKind.ROUTINE
    return f"Routine: {routine.name}"[:200] if thread else ""


def next_run(routine: Routine, after: datetime | None = None) -> datetime | None:
    """When the routine runs next (None: disabled, or never again; a one-time routine that
    came due has no next run)."""
    if not routine.enabled:
        return None
    if routine.schedule_kind == ScheduleKind.AT:
        done = RoutineRun.objects.filter(routine_id=routine.pk, scheduled_at=routine.at)
        if done.exists():
            return None
    return schedule_of(routine).next_after(after or now())


def _errors_of(routine: Routine, every: Any, at: Any, check_at_past: bool) -> dict[str, list[str]]:
    """Every problem with the routine's fields (it is not saved yet); sets the schedule's
    normalised fields on ``routine``."""
    errors: dict[str, list[str]] = {}
    if not (routine.name or "").strip():
        errors["name"] = ["a name is required"]
    if not (routine.prompt or "").strip():
        errors["prompt"] = ["a prompt is required"]
    if not routine.agent_id or not Agent.objects.filter(pk=routine.agent_id).exists():
        errors["agent_id"] = [f"no agent {routine.agent_id!r}"]
    try:
        schedule = build(
            kind=routine.schedule_kind,
            timezone=routine.timezone,
            cron=routine.cron,
            every=every,
            at=at,
            anchor=now(),
        )
    except ScheduleError as exc:
        errors.setdefault(exc.field, []).append(exc.message)
    else:
        _apply_schedule(routine, schedule, at, check_at_past, errors)
    errors.update(_target_errors(routine))
    return errors


def _apply_schedule(
    routine: Routine, schedule: Schedule, at: Any, check_at_past: bool, errors: dict
) -> None:
    routine.cron = schedule.cron.expression if schedule.cron else ""
    routine.every_seconds = schedule.every_seconds
    routine.anchor_at = schedule.anchor
    routine.at = schedule.at
    if check_at_past and schedule.at is not None and schedule.at < now() - AT_PAST_GRACE:
        errors.setdefault("at", []).append(f"{schedule.at.isoformat()} is in the past")
    if schedule.cron is not None and schedule.next_after(now()) is None:
        errors.setdefault("cron", []).append("this expression never matches a date")
    if routine.delete_after_run and routine.schedule_kind != ScheduleKind.AT:
        errors.setdefault("delete_after_run", []).append("only a one-time (at) routine")


def _target_errors(routine: Routine) -> dict[str, list[str]]:
    if routine.target_kind not in TargetKind.values:
        return {
            "target_kind": [f"unknown target {routine.target_kind!r}; use routine, main or session"]
        }
    if routine.target_kind != TargetKind.SESSION:
        routine.target_session_key = ""
        return {}
    key = (routine.target_session_key or "").strip()
    if not key:
        return {"target_session_key": ["a session key is required for target 'session'"]}
    session = Session.objects.filter(key=key).values("agent_id").first()
    if session is None:
        return {"target_session_key": [f"no session {key!r}"]}
    if session["agent_id"] != routine.agent_id:
        return {"target_session_key": [f"session {key!r} belongs to agent {session['agent_id']!r}"]}
    return {}


def routine_create(
    *,
    name: str,
    agent_id: str,
    prompt: str,
    schedule_kind: str = ScheduleKind.CRON,
    cron: str | None = None,
    every: int | str | None = None,
    at: str | datetime | None = None,
    timezone: str | None = None,
    enabled: bool = True,
    target_kind: str = TargetKind.ROUTINE,
    target_session_key: str = "",
    delete_after_run: bool = False,
    description: str = "",
    routine_id: str | None = None,
) -> Routine:
    """Create a routine and its beat rows; publishes ``routine`` ``added``. ``timezone``
    defaults to ``WINGMAN_TIMEZONE`` (UTC when unset); ``every`` is seconds or text such as
    ``15m``; ``at`` is ISO 8601. Raises ValidationError by field; nothing is saved then."""
    routine = Routine(
        name=(name or "").strip(),
        description=description or "",
        agent_id=agent_id,
        prompt=prompt or "",
        schedule_kind=schedule_kind,
        cron=cron or "",
        timezone=timezone or settings.WINGMAN_TIMEZONE,
        enabled=enabled,
        target_kind=target_kind,
        target_session_key=target_session_key or "",
        delete_after_run=delete_after_run,
    )
    if routine_id is not None:
        routine.pk = routine_id
        if Routine.objects.filter(pk=routine_id).exists():
            raise ValidationError({"id": [f"a routine {routine_id!r} already exists"]})
    errors = _errors_of(routine, every, at, check_at_past=True)
    if errors:
        raise ValidationError(errors)
    routine.next_run_at = next_run(routine)
    with transaction.atomic():
        routine.save(force_insert=True)
        ensure_session(routine)
        beat.sync(routine)
        publish_after_commit("added", routine)
    return routine


def routine_get_for_update(routine_id: str) -> Routine:
    routine = Routine.objects.select_for_update().filter(pk=routine_id).first()
    if routine is None:
        raise not_found(routine_id)
    return routine


def _check_revision(routine: Routine, expected: int | None) -> None:
    if expected is not None and expected != routine.revision:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"routine {routine.pk!r} is at revision {routine.revision}, not {expected}: "
            "reload it and try again",
        )


def routine_update(
    *, routine_id: str, expected_revision: int | None = None, **changes: Any
) -> Routine:
    """Change some of a routine's fields (``FIELDS``); bumps ``revision``, re-syncs its beat
    rows, publishes ``updated``. ``expected_revision`` (if given) must equal the current
    revision (else CONFLICT). Changing the schedule restarts its counting from now.
    Re-enabling clears ``disabled_reason`` and ``consecutive_errors``."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["not a routine field that can be changed"]})
    with transaction.atomic():
        routine = routine_get_for_update(routine_id)
        _check_revision(routine, expected_revision)
        check_at_past = "at" in changes
        before = _schedule_key(routine)
        anchor = routine.anchor_at
        every = changes.pop("every", routine.every_seconds)
        at = changes.pop("at", routine.at)
        for field, value in changes.items():
            setattr(routine, field, "" if value is None and field != "enabled" else value)
        if not routine.timezone:
            routine.timezone = settings.WINGMAN_TIMEZONE
        errors = _errors_of(routine, every, at, check_at_past=check_at_past)
        if errors:
            raise ValidationError(errors)
        schedule_changed = _schedule_key(routine) != before
        if not schedule_changed:
            routine.anchor_at = anchor
        if changes.get("enabled") is True:
            routine.disabled_reason = ""
            routine.consecutive_errors = 0
        routine.revision += 1
        routine.next_run_at = next_run(routine)
        routine.save()
        ensure_session(routine)
        beat.sync(routine, schedule_changed=schedule_changed)
        publish_after_commit("updated", routine)
    return routine


def _schedule_key(routine: Routine) -> tuple:
    return (
        routine.schedule_kind,
        routine.cron,
        routine.every_seconds,
        routine.at,
        routine.timezone,
    )


def routine_set_enabled(*, routine_id: str, enabled: bool, reason: str = "") -> Routine:
    """Enable or disable a routine (its PeriodicTask follows); publishes ``updated``.
    ``reason``: why the gateway disabled it (shown as ``disabled_reason``)."""
    with transaction.atomic():
        routine = routine_get_for_update(routine_id)
        routine.enabled = enabled
        routine.disabled_reason = "" if enabled else reason
        if enabled:
            routine.consecutive_errors = 0
        routine.revision += 1
        routine.next_run_at = next_run(routine)
        routine.save()
        beat.sync(routine, schedule_changed=False)
        publish_after_commit("updated", routine)
    return routine


def routine_delete(*, routine_id: str) -> None:
    """Delete a routine, its PeriodicTask and unused schedule rows, and its fire records
    (its thread and its agent Runs stay); publishes ``removed``. NOT_FOUND if unknown."""
    with transaction.atomic():
        routine = routine_get_for_update(routine_id)
        beat.remove(routine.pk)
        publish_after_commit("removed", routine)
        routine.delete()
