"""OpenClaw's ``cron.*`` methods (its automations) over Wingman routines.

The real, unmodified OpenClaw CLI (``openclaw cron ...``) manages routines through these;
shapes, real frames and the fields the CLI checks:
``tests/fixtures/real-client-frames/OPENCLAW_CRON_NODES.md``. A cron job is a routine:
the params here translate into the canonical routine fields
(:class:`~gateway.protocol.routines.RoutineFields`), and a routine's read view
(:class:`~gateway.protocol.routines.RoutineView`) translates back into a job. Pure
functions, no database: ``routines/methods.py`` does the calls.

Accepted and not acted on (declared, never an error): ``wakeMode``, ``delivery`` (a
routine's answer stays in its thread), ``payload.model|thinking|toolsAllow``, ``staggerMs``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, model_validator

from gateway.protocol.base import Frame
from gateway.protocol.errors import ErrorCode, GatewayError

JOB_NOT_FOUND = "CRON_JOB_NOT_FOUND"
JOB_CHANGED = "CRON_JOB_CHANGED"
#: ``cron.run`` answers that say nothing ran.
NOT_DUE, ALREADY_RUNNING = "not-due", "already-running"


# schedules and payloads -------------------------------------------------------------------
class CronExpr(Frame):
    kind: Literal["cron"]
    expr: str = Field(min_length=1, max_length=200)
    tz: str | None = Field(default=None, max_length=64)
    stagger_ms: int | None = Field(default=None, alias="staggerMs", ge=0)


class CronEvery(Frame):
    kind: Literal["every"]
    every_ms: int = Field(alias="everyMs", gt=0)
    anchor_ms: int | None = Field(default=None, alias="anchorMs")


class CronAt(Frame):
    kind: Literal["at"]
    at: str = Field(min_length=1, max_length=64, description="ISO 8601 time")


CronSchedule = Annotated[CronExpr | CronEvery | CronAt, Field(discriminator="kind")]


class AgentTurn(Frame):
    """Run the agent on ``message`` (the routine's prompt)."""

    kind: Literal["agentTurn"]
    message: str = Field(min_length=1, max_length=200_000)
    model: str | None = Field(default=None, max_length=200)
    thinking: Any = None
    timeout_seconds: int | None = Field(default=None, alias="timeoutSeconds", ge=1)
    tools_allow: list[str] | None = Field(default=None, alias="toolsAllow")


class SystemEvent(Frame):
    """A system event's ``text``; Wingman runs it as the routine's prompt."""

    kind: Literal["systemEvent"]
    text: str = Field(min_length=1, max_length=200_000)


CronPayload = Annotated[AgentTurn | SystemEvent, Field(discriminator="kind")]


class CronDelivery(Frame):
    mode: Literal["none", "announce", "webhook"] = "none"
    channel: str | None = Field(default=None, max_length=100)
    to: str | None = Field(default=None, max_length=500)
    account_id: str | None = Field(default=None, alias="accountId", max_length=200)
    best_effort: bool | None = Field(default=None, alias="bestEffort")


SessionTarget = Annotated[
    str,
    Field(
        max_length=520,
        pattern=r"^(main|isolated|current|session:.+)$",
        description="isolated = the routine's thread, main = the agent's main session, "
        "session:<key> = that session",
    ),
]


# params ------------------------------------------------------------------------------------
class JobFields(Frame):
    """A job's fields; ``cron.update``'s ``patch`` (all optional)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    schedule: CronSchedule | None = None
    session_target: SessionTarget | None = Field(default=None, alias="sessionTarget")
    wake_mode: Literal["now", "next-heartbeat"] | None = Field(default=None, alias="wakeMode")
    payload: CronPayload | None = None
    delivery: CronDelivery | None = None
    delete_after_run: bool | None = Field(default=None, alias="deleteAfterRun")


class CronAddParams(JobFields):
    name: str = Field(min_length=1, max_length=200)
    schedule: CronSchedule
    payload: CronPayload


class JobIdParams(Frame):
    """``{id}`` (the schema also accepts ``jobId``)."""

    id: str = Field(min_length=1, max_length=200, validation_alias=AliasChoices("id", "jobId"))


class CronUpdateParams(JobIdParams):
    patch: JobFields
    expected_config_revision: str | None = Field(
        default=None, alias="expectedConfigRevision", max_length=64
    )


class CronRunParams(JobIdParams):
    mode: Literal["force", "due"] = "force"


class CronListParams(Frame):
    include_disabled: bool = Field(default=False, alias="includeDisabled")
    limit: int = Field(default=200, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    query: str | None = Field(default=None, max_length=200)
    sort_by: str | None = Field(default=None, alias="sortBy", max_length=32)
    sort_dir: Literal["asc", "desc"] | None = Field(default=None, alias="sortDir")


class CronRunsParams(Frame):
    id: str | None = Field(
        default=None, max_length=200, validation_alias=AliasChoices("id", "jobId")
    )
    run_id: str | None = Field(default=None, alias="runId", max_length=200)
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)
    status: Literal["ok", "error", "skipped", "all"] | None = None
    delivery_status: str | None = Field(default=None, alias="deliveryStatus", max_length=32)
    query: str | None = Field(default=None, max_length=200)
    sort_dir: Literal["asc", "desc"] = Field(default="desc", alias="sortDir")
    scope: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _job_or_all(self) -> CronRunsParams:
        if self.scope not in (None, "all", "job"):
            raise ValueError("scope must be job or all")
        return self


# errors ------------------------------------------------------------------------------------
def job_not_found(job_id: str) -> GatewayError:
    """What the CLI reads as "not found" (it then looks the name up in ``cron.list``)."""
    return GatewayError(
        ErrorCode.INVALID_REQUEST,
        f"cron job not found: {job_id}",
        details={"code": JOB_NOT_FOUND, "jobId": job_id},
    )


def job_changed(job_id: str, current: str) -> GatewayError:
    """``expectedConfigRevision`` no longer matches: someone changed the job meanwhile."""
    return GatewayError(
        ErrorCode.INVALID_REQUEST,
        f"cron job changed since it was read: {job_id} (configRevision is now {current})",
        details={"code": JOB_CHANGED, "jobId": job_id, "configRevision": current},
    )


# cron → routine ----------------------------------------------------------------------------
def schedule_fields(schedule: CronExpr | CronEvery | CronAt) -> dict[str, Any]:
    """A cron schedule as routine fields (``schedule_kind`` and ``cron|every|at``, ``timezone``)."""
    if isinstance(schedule, CronExpr):
        out: dict[str, Any] = {"schedule_kind": "cron", "cron": schedule.expr}
        if schedule.tz:
            out["timezone"] = schedule.tz
        return out
    if isinstance(schedule, CronEvery):
        seconds = schedule.every_ms / 1000
        return {
            "schedule_kind": "every",
            "every": int(seconds) if seconds.is_integer() else seconds,
        }
    return {"schedule_kind": "at", "at": schedule.at}


def target_fields(session_target: str) -> dict[str, Any]:
    """``sessionTarget`` as routine fields (``target_kind``, ``target_session_key``)."""
    if session_target == "isolated":
        return {"target_kind": "routine", "target_session_key": ""}
    if session_target == "main":
        return {"target_kind": "main", "target_session_key": ""}
    if session_target == "current":
        raise GatewayError(
            ErrorCode.INVALID_REQUEST,
            "sessionTarget current needs a calling session; use isolated, main or session:<key>",
        )
    key = session_target.removeprefix("session:")
    return {"target_kind": "session", "target_session_key": key}


def routine_fields(job: JobFields) -> dict[str, Any]:
    """A job (or a patch: only what it sets) as keyword fields of the routine service."""
    given = job.model_fields_set
    out: dict[str, Any] = {}
    for field in ("name", "description", "enabled", "agent_id", "delete_after_run"):
        if field in given and getattr(job, field) is not None:
            out[field] = getattr(job, field)
    if job.schedule is not None:
        out |= schedule_fields(job.schedule)
    if job.payload is not None:
        payload = job.payload
        out["prompt"] = payload.message if isinstance(payload, AgentTurn) else payload.text
    if job.session_target is not None:
        out |= target_fields(job.session_target)
    elif isinstance(job, CronAddParams):  # OpenClaw's default per payload kind
        out |= target_fields("main" if isinstance(job.payload, SystemEvent) else "isolated")
    return out


# routine → cron ----------------------------------------------------------------------------
def job_schedule(routine: dict[str, Any]) -> dict[str, Any]:
    """A routine's schedule in cron terms."""
    kind = routine["scheduleKind"]
    if kind == "every":
        return {"kind": "every", "everyMs": int(routine["everySeconds"]) * 1000}
    if kind == "at":
        return {"kind": "at", "at": routine["at"]}
    return {"kind": "cron", "expr": routine["cron"], "tz": routine["timezone"]}


def session_target(routine: dict[str, Any]) -> str:
    target = routine["target"]
    if target == "routine":
        return "isolated"
    if target == "main":
        return "main"
    return f"session:{routine['sessionKey']}"


#: Our outcomes as cron's (ok | error | skipped); ``running`` is not an outcome.
_CRON_STATUS = {"ok": "ok", "error": "error", "cancelled": "error", "timeout": "error"}
_CRON_STATUS["skipped"] = "skipped"
_COMPLETION = {"ok": "succeeded", "error": "failed", "timeout": "failed"}
_COMPLETION |= {"cancelled": "cancelled", "skipped": "skipped"}


def _run_status(status: str | None) -> str | None:
    """A routine's last outcome as cron's ``lastRunStatus`` (ok | error | skipped)."""
    return _CRON_STATUS.get(status or "")


def job_view(routine: dict[str, Any]) -> dict[str, Any]:
    """The cron job read view of a routine (``RoutineView`` by wire name)."""
    status = _run_status(routine.get("lastStatus"))
    state = {
        "nextRunAtMs": routine.get("nextRunAt"),
        "runningAtMs": routine.get("runningSince"),
        "lastRunAtMs": routine.get("lastRunAt"),
        "lastRunStatus": status,
        "lastStatus": status,
        "lastError": routine.get("lastError"),
        "lastDurationMs": routine.get("lastDurationMs"),
        "lastDeliveryStatus": "not-requested" if status else None,
        "consecutiveErrors": routine.get("consecutiveErrors", 0),
    }
    state = {k: v for k, v in state.items() if v is not None}
    job = {
        "id": routine["id"],
        "name": routine["name"],
        "enabled": routine["enabled"],
        "createdAtMs": routine["createdAt"],
        "updatedAtMs": routine["updatedAt"],
        "schedule": job_schedule(routine),
        "sessionTarget": session_target(routine),
        "sessionKey": routine["sessionKey"],
        "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": routine["prompt"]},
        "delivery": {"mode": "none"},
        "deleteAfterRun": routine.get("deleteAfterRun", False),
        "state": state,
        "agentId": routine["agentId"],
        "configRevision": routine["configRevision"],
        "nextRunAtMs": state.get("nextRunAtMs"),
        "lastRunAtMs": state.get("lastRunAtMs"),
        "lastRunStatus": status,
        "lastRunError": routine.get("lastError"),
    }
    if routine.get("disabledReason"):
        job["description"] = routine["disabledReason"]
    return job


def delivery_preview(routine: dict[str, Any]) -> dict[str, str]:
    """``{label, detail}``: where a job's output goes (its session; nothing is announced)."""
    return {"label": "session", "detail": f"answers stay in session {routine['sessionKey']}"}


def page(items: list[Any], *, total: int, offset: int, limit: int) -> dict[str, Any]:
    """The inventory page fields the CLI checks (all six, consistent)."""
    has_more = offset + len(items) < total
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "hasMore": has_more,
        "nextOffset": offset + len(items) if has_more else None,
    }


def run_entry(run: dict[str, Any], *, job_name: str) -> dict[str, Any]:
    """A finished routine run (``RoutineRunView`` by wire name) as a ``cron.runs`` entry."""
    failed = run["status"] != "ok" and run["status"] != "skipped"
    entry = {
        "ts": run.get("endedAt") or run.get("scheduledAt") or run.get("startedAt"),
        "jobId": run["routineId"],
        "jobName": job_name,
        "action": "finished",
        "status": _run_status(run["status"]),
        "completionStatus": _COMPLETION.get(run["status"]),
        "error": (run.get("reason") or run["status"]) if failed else None,
        "summary": run.get("summary") or (run.get("reason") if not failed else None),
        "delivered": False,
        "deliveryStatus": "not-requested",
        "sessionKey": run["sessionKey"],
        "sessionId": run["sessionKey"],
        "runId": run.get("runId"),
        "runAtMs": run.get("startedAt") or run.get("scheduledAt"),
        "durationMs": run.get("durationMs"),
    }
    return {k: v for k, v in entry.items() if v is not None}


def cron_event(payload: dict[str, Any]) -> dict[str, Any]:
    """A ``routine`` event payload (``RoutinePayload`` by wire name) as OpenClaw's ``cron``
    event payload ``{jobId, action, runAtMs?, status?, error?, durationMs?, nextRunAtMs?,
    runId?, sessionKey?}``; a skipped time is a ``finished`` run with status ``skipped``."""
    action = payload["action"]
    out: dict[str, Any] = {"jobId": payload["routineId"], "action": action}
    if action == "skipped":
        out |= {"action": "finished", "status": "skipped"}
    elif action == "finished":
        out["status"] = _run_status(payload.get("status"))
    run_at = payload.get("scheduledAtMs") or (payload.get("ts") if action == "started" else None)
    for key, value in (
        ("runAtMs", run_at),
        ("durationMs", payload.get("durationMs")),
        ("nextRunAtMs", payload.get("nextRunAtMs")),
        ("error", payload.get("error") or payload.get("reason")),
        ("runId", payload.get("runId")),
        ("sessionKey", payload.get("sessionKey")),
    ):
        if value is not None:
            out[key] = value
    return out
