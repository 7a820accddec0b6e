"""What every routine surface shares (WebSocket methods, REST, Control UI, CLI, admin): a
routine and its runs as the wire shows them (``gateway/protocol/routines.py``), the service
calls with their errors in the caller's field names, and the ``cron.*`` reads.

Writes go through ``routines.services``; this module only reads models and translates.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q

from agents.services.sessions import agent_default
from gateway.protocol import cron
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.routines import RoutineRunView, RoutineView
from routines.models import Routine, RoutineRun, RoutineStatus, ScheduleKind
from routines.services import fire
from routines.services import routines as service

#: How many coming run times a routine's view lists.
NEXT_RUNS = 5
#: Service field → canonical wire field (``routines.*``, REST).
WIRE_NAMES = {
    "agent_id": "agentId",
    "schedule_kind": "scheduleKind",
    "target_kind": "target",
    "target_session_key": "sessionKey",
    "delete_after_run": "deleteAfterRun",
    "every": "every",
}
#: Service field → OpenClaw cron job field.
CRON_NAMES = {
    "agent_id": "agentId",
    "cron": "schedule.expr",
    "every": "schedule.everyMs",
    "at": "schedule.at",
    "timezone": "schedule.tz",
    "schedule_kind": "schedule.kind",
    "prompt": "payload.message",
    "target_kind": "sessionTarget",
    "target_session_key": "sessionTarget",
    "delete_after_run": "deleteAfterRun",
}


def ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def field_error(exc: ValidationError, names: dict[str, str]) -> GatewayError:
    """A service's ValidationError as INVALID_REQUEST naming each field (wire names)."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else {"routine": exc.messages}
    errors = {names.get(field, field): msgs for field, msgs in detail.items()}
    text = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return GatewayError(ErrorCode.INVALID_REQUEST, text, details={"errors": errors})


# reads -------------------------------------------------------------------------------------
def routine_get(routine_id: str) -> Routine:
    """The routine, or NOT_FOUND."""
    routine = Routine.objects.filter(pk=routine_id).first()
    if routine is None:
        raise service.not_found(routine_id)
    return routine


def _schedule_text(routine: Routine) -> str:
    if routine.schedule_kind == ScheduleKind.EVERY:
        return f"every {routine.every_seconds}s"
    if routine.schedule_kind == ScheduleKind.AT:
        return f"at {routine.at.isoformat() if routine.at else '?'}"
    return routine.cron


def _running_since(routine: Routine) -> int | None:
    running = routine.runs.filter(status=RoutineStatus.RUNNING).order_by("created_at").first()
    return ms(running.created_at) if running else None


def next_runs(routine: Routine, count: int = NEXT_RUNS) -> list[datetime]:
    """The routine's coming run times (none while disabled)."""
    if not routine.enabled:
        return []
    return service.schedule_of(routine).next_runs(count, datetime.now(UTC))


def routine_view(routine: Routine) -> dict[str, Any]:
    """``RoutineView`` by wire name."""
    view = RoutineView(
        id=routine.pk,
        name=routine.name,
        description=routine.description,
        agentId=routine.agent_id,
        scheduleKind=routine.schedule_kind,
        schedule=_schedule_text(routine),
        cron=routine.cron or None,
        everySeconds=routine.every_seconds,
        at=routine.at.isoformat() if routine.at else None,
        timezone=routine.timezone,
        prompt=routine.prompt,
        enabled=routine.enabled,
        target=routine.target_kind,
        sessionKey=service.target_key(routine),
        deleteAfterRun=routine.delete_after_run,
        createdAt=ms(routine.created_at),
        updatedAt=ms(routine.updated_at),
        nextRunAt=ms(routine.next_run_at) if routine.enabled else None,
        nextRuns=[ms(moment) for moment in next_runs(routine)],
        lastRunAt=ms(routine.last_run_at),
        lastStatus=routine.last_status or None,
        lastError=routine.last_error or None,
        lastRunId=routine.last_run_id or None,
        lastDurationMs=routine.last_duration_ms,
        runningSince=_running_since(routine),
        consecutiveErrors=routine.consecutive_errors,
        disabledReason=routine.disabled_reason or None,
        configRevision=str(routine.revision),
    )
    return view.model_dump(by_alias=True)


def routine_queryset(*, agent_id: str | None = None, enabled: bool | None = None):
    qs = Routine.objects.order_by("name", "id")
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    if enabled is not None:
        qs = qs.filter(enabled=enabled)
    return qs


def routine_views(*, agent_id: str | None = None, enabled: bool | None = None) -> list[dict]:
    return [routine_view(r) for r in routine_queryset(agent_id=agent_id, enabled=enabled)]


def routine_view_of(routine_id: str) -> dict[str, Any]:
    return routine_view(routine_get(routine_id))


def run_view(record: RoutineRun) -> dict[str, Any]:
    """``RoutineRunView`` by wire name."""
    run = record.run
    summary = (run.result or "")[:200] or None if run is not None else None
    return RoutineRunView(
        id=record.pk,
        routineId=record.routine_id,
        runId=run.pk if run is not None else None,
        trigger=record.trigger,
        sessionKey=record.session_key or (run.session.key if run is not None else ""),
        status=record.status,
        reason=record.reason or None,
        scheduledAt=ms(record.scheduled_at),
        startedAt=ms(run.started_at if run is not None else None) or ms(record.created_at),
        endedAt=ms(record.ended_at),
        durationMs=record.duration_ms,
        summary=summary,
    ).model_dump(by_alias=True)


def run_queryset(routine_id: str | None = None):
    qs = RoutineRun.objects.select_related("run__session").order_by("-created_at", "-id")
    return qs.filter(routine_id=routine_id) if routine_id else qs


def run_views(routine_id: str, *, limit: int = 50) -> tuple[list[dict], int]:
    """A routine's runs, newest first (NOT_FOUND for an unknown routine), and how many."""
    routine_get(routine_id)
    qs = run_queryset(routine_id)
    return [run_view(r) for r in qs[:limit]], qs.count()


# writes ------------------------------------------------------------------------------------
def create(fields: dict[str, Any], *, cron_field_names: bool = False) -> dict[str, Any]:
    """Create a routine (service field names in ``fields``); its view."""
    fields = dict(fields)
    if "id" in fields:
        fields["routine_id"] = fields.pop("id")
    fields = {k: v for k, v in fields.items() if v is not None}
    if "agent_id" not in fields:  # cron.add without agentId: the default agent's
        fields["agent_id"] = agent_default().pk
    try:
        routine = service.routine_create(**fields)
    except ValidationError as exc:
        raise field_error(exc, CRON_NAMES if cron_field_names else WIRE_NAMES) from None
    return routine_view(routine)


def _revision(expected: str | None) -> int | None:
    if expected is None:
        return None
    return int(expected) if expected.isdigit() else -1


def update(
    routine_id: str, changes: dict[str, Any], *, expected: str | None = None, names=None
) -> dict[str, Any]:
    """Change some fields (``expected``: the configRevision the caller saw); its view."""
    try:
        routine = service.routine_update(
            routine_id=routine_id, expected_revision=_revision(expected), **changes
        )
    except ValidationError as exc:
        raise field_error(exc, names or WIRE_NAMES) from None
    return routine_view(routine)


def delete(routine_id: str) -> None:
    service.routine_delete(routine_id=routine_id)


#: FireResult reasons as OpenClaw's ``cron.run`` reasons.
CRON_REASONS = {"overlap": cron.ALREADY_RUNNING, "duplicate": cron.ALREADY_RUNNING}
CRON_REASONS["too-late"] = cron.NOT_DUE  # its last time passed beyond the starting deadline


async def run_now(routine_id: str, *, mode: str = "force") -> dict[str, Any]:
    """Run a routine now (``due``: only if a scheduled time has come and not run yet):
    ``{routineId, runId, sessionKey, status: "accepted"}``, or ``runId: null, status:
    "skipped", reason`` (``overlap``: its previous run still goes; ``not-due``...)."""
    outcome = await fire.routine_run_now(routine_id=routine_id, mode=mode)
    if outcome.reason == "not-found":
        raise service.not_found(routine_id)
    return {
        "routineId": routine_id,
        "runId": outcome.run_id,
        "sessionKey": outcome.session_key,
        "status": "accepted" if outcome.ran else "skipped",
        "reason": outcome.reason,
    }


# cron.* ------------------------------------------------------------------------------------
def job_routine(job_id: str) -> dict[str, Any]:
    """The routine view of a cron job id, or OpenClaw's not-found error."""
    routine = Routine.objects.filter(pk=job_id).first()
    if routine is None:
        raise cron.job_not_found(job_id)
    return routine_view(routine)


def _cron_list_queryset(params: cron.CronListParams):
    qs = routine_queryset(agent_id=params.agent_id)
    if not params.include_disabled:
        qs = qs.filter(enabled=True)
    if params.query:
        text = params.query
        qs = qs.filter(Q(pk=text) | Q(name__icontains=text) | Q(prompt__icontains=text))
    if params.sort_by in ("nextRunAtMs", "next"):
        qs = qs.order_by("next_run_at", "id")
    elif params.sort_by in ("updatedAtMs", "updated"):
        qs = qs.order_by("updated_at", "id")
    return qs.reverse() if params.sort_dir == "desc" else qs


def cron_page(params: cron.CronListParams) -> dict[str, Any]:
    """``cron.list``: a page of jobs with the inventory fields, previews and a revision of
    the whole matching set (it changes whenever any matching job changes)."""
    qs = _cron_list_queryset(params)
    revisions = list(qs.values_list("id", "revision"))
    snapshot = hashlib.sha256(repr(revisions).encode()).hexdigest()[:16]
    views = [routine_view(r) for r in qs[params.offset : params.offset + params.limit]]
    jobs = [cron.job_view(v) | {"effectiveAgentId": v["agentId"]} for v in views]
    previews = {v["id"]: cron.delivery_preview(v) for v in views}
    page = cron.page(jobs, total=len(revisions), offset=params.offset, limit=params.limit)
    return {"jobs": jobs, "snapshotRevision": snapshot, **page, "deliveryPreviews": previews}


def cron_remove(job_id: str) -> None:
    """``cron.remove``: OpenClaw's not-found error for an unknown (or just deleted) job."""
    try:
        service.routine_delete(routine_id=job_id)
    except GatewayError as exc:
        if exc.code == ErrorCode.NOT_FOUND:
            raise cron.job_not_found(job_id) from None
        raise


def cron_update(params: cron.CronUpdateParams) -> dict[str, Any]:
    """``cron.update``: the patched routine's view (CRON_JOB_CHANGED on a stale revision)."""
    current = job_routine(params.id)
    expected = params.expected_config_revision
    if expected is not None and expected != current["configRevision"]:
        raise cron.job_changed(params.id, current["configRevision"])
    changes = cron.routine_fields(params.patch)
    try:
        return update(params.id, changes, expected=expected, names=CRON_NAMES)
    except GatewayError as exc:
        if exc.code == ErrorCode.CONFLICT:  # changed between the read and the write
            raise cron.job_changed(params.id, job_routine(params.id)["configRevision"]) from None
        if exc.code == ErrorCode.NOT_FOUND:
            raise cron.job_not_found(params.id) from None
        raise


def cron_runs(params: cron.CronRunsParams) -> dict[str, Any]:
    """``cron.runs``: finished runs (and skipped times), newest first, paged."""
    if params.id is not None:
        job_routine(params.id)
    qs = run_queryset(params.id if params.scope != "all" else None)
    qs = qs.exclude(status=RoutineStatus.RUNNING)
    if params.run_id:
        qs = qs.filter(run_id=params.run_id)
    if params.status in ("ok", "skipped"):
        qs = qs.filter(status=params.status)
    elif params.status == "error":
        qs = qs.exclude(status__in=[RoutineStatus.OK, RoutineStatus.SKIPPED])
    if params.sort_dir == "asc":
        qs = qs.reverse()
    total = qs.count()
    records = list(qs.select_related("routine")[params.offset : params.offset + params.limit])
    entries = [cron.run_entry(run_view(r), job_name=r.routine.name) for r in records]
    return {
        "entries": entries,
        **cron.page(entries, total=total, offset=params.offset, limit=params.limit),
    }


def scheduler_status() -> dict[str, Any]:
    """``cron.status``: whether routines fire here, how many, the next fire time."""
    enabled = Routine.objects.filter(enabled=True)
    nxt = enabled.exclude(next_run_at=None).order_by("next_run_at").first()
    db = settings.DATABASES["default"]
    sqlite = connection.vendor == "sqlite"
    return {
        "enabled": scheduler_on(),
        "triggersEnabled": scheduler_on(),
        "storePath": str(db.get("NAME") or ""),
        "storage": connection.vendor,
        "sqlitePath": str(db.get("NAME")) if sqlite else None,
        "jobs": Routine.objects.count(),
        "enabledJobs": enabled.count(),
        "nextWakeAtMs": ms(nxt.next_run_at) if nxt else None,
    }


def scheduler_on() -> bool:
    """Does anything fire routines: the embedded scheduler, or a beat (scaled setup)?"""
    return getattr(settings, "WINGMAN_ROUTINES_SCHEDULER", "auto") != "off"


async def cron_run(job_id: str, *, due_only: bool) -> dict[str, Any]:
    """``cron.run``: ``{ok, enqueued, runId}`` or ``{ok, ran: false, reason}``."""
    await sync_to_async(job_routine)(job_id)
    outcome = await fire.routine_run_now(routine_id=job_id, mode="due" if due_only else "force")
    if outcome.reason == "not-found":  # deleted meanwhile
        raise cron.job_not_found(job_id)
    if not outcome.ran:
        return {
            "ok": True,
            "ran": False,
            "reason": CRON_REASONS.get(outcome.reason, outcome.reason),
        }
    return {"ok": True, "enqueued": True, "runId": outcome.run_id}
