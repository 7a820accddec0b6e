"""Params and read view of the canonical ``routines.*`` methods (mirrors of ``/api/routines``).

A routine on the wire (:class:`RoutineView`) is also what ``gateway/protocol/cron.py``
translates into OpenClaw's cron job read view, so both dialects describe a routine from
one shape. Rules (CRON syntax, time zones, agents, sessions) are the routine service's;
these models check types and lengths and reject unknown fields.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator

from gateway.protocol.base import Frame

#: Where a routine's runs go: its own thread (session ``agent:<agentId>:routine:<id>``,
#: named ``Routine: <name>``), the agent's main session, or an existing session
#: (``sessionKey``).
Target = Literal["routine", "main", "session"]
ScheduleKind = Literal["cron", "every", "at"]
#: A routine's last outcome (``skipped``: the previous run was still going, or too late).
Outcome = Literal["running", "ok", "error", "cancelled", "timeout", "skipped"]
SCHEDULE_FIELDS = ("cron", "every", "at")
#: Fields that ``null`` clears in an update.
CLEARABLE = frozenset({"description", "timezone", "target_session_key"})

RoutineId = Field(min_length=1, max_length=64)


class RoutineFields(Frame):
    """What a routine is made of; every field optional (``routines.update``, PATCH).

    The schedule is one of ``cron`` (5 fields or ``@daily``...), ``every`` (seconds, or
    text such as ``15m``, ``every 2 hours``) or ``at`` (ISO 8601); ``scheduleKind`` is
    implied by which one is given."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    agent_id: str | None = Field(default=None, alias="agentId", min_length=1, max_length=64)
    schedule_kind: ScheduleKind | None = Field(default=None, alias="scheduleKind")
    cron: str | None = Field(
        default=None, max_length=200, description='"0 9 * * 1-5", "@daily" (seed 001: cron)'
    )
    every: int | str | None = Field(
        default=None, description='interval: seconds, or "15m", "2h", "every 15 minutes"'
    )
    at: str | None = Field(
        default=None, max_length=64, description='one time: "2026-12-24T18:00+01:00"'
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone; default: the gateway's zone"
    )
    prompt: str | None = Field(default=None, min_length=1, max_length=200_000)
    enabled: bool | None = None
    target_kind: Target | None = Field(
        default=None,
        alias="target",
        description="routine (its own thread, default) | main | session",
    )
    target_session_key: str | None = Field(
        default=None,
        alias="sessionKey",
        max_length=500,
        validation_alias=AliasChoices("sessionKey", "sessionId"),
        description="the session of target=session (seed 001 calls it sessionId)",
    )
    delete_after_run: bool | None = Field(
        default=None, alias="deleteAfterRun", description="one-time (at) routines: delete after"
    )

    @field_validator("name", "prompt")
    @classmethod
    def _filled(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> Self:
        given = [name for name in SCHEDULE_FIELDS if getattr(self, name) not in (None, "")]
        if len(given) > 1:
            raise ValueError(f"give one schedule: {' or '.join(given)}, not both")
        if given and self.schedule_kind and self.schedule_kind != given[0]:
            raise ValueError(f"scheduleKind {self.schedule_kind} does not match {given[0]}")
        if given:
            self.schedule_kind = given[0]  # type: ignore[assignment]
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, by Python name (``schedule_kind`` included with a schedule);
        ``null`` clears only what can be empty (description, timezone → the default,
        sessionKey), and means "unchanged" for the rest."""
        out = self.model_dump(exclude_unset=True, by_alias=False)
        out = {k: v for k, v in out.items() if v is not None or k in CLEARABLE}
        if self.schedule_kind is not None:
            out["schedule_kind"] = self.schedule_kind
        return out


class RoutineCreateParams(RoutineFields):
    """``routines.create``: name, agent, a schedule and a prompt are required."""

    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)
    prompt: str = Field(min_length=1, max_length=200_000)
    id: str | None = Field(
        default=None, max_length=64, description="chosen by the gateway when omitted"
    )

    @model_validator(mode="after")
    def _has_schedule(self) -> Self:
        if self.schedule_kind is None:
            raise ValueError("a schedule is required: cron, every or at")
        return self


class RoutineIdParams(Frame):
    id: str = RoutineId


class RoutineUpdateParams(RoutineFields):
    """``routines.update {id, ...fields}``; ``expectedRevision`` refuses a stale edit."""

    id: str = RoutineId
    expected_revision: str | None = Field(default=None, alias="expectedRevision", max_length=64)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in super().changes().items() if k not in ("id", "expected_revision")}


class RoutinesListParams(Frame):
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    enabled: bool | None = None


class RoutineRunsParams(Frame):
    id: str = RoutineId
    limit: int = Field(default=50, ge=1, le=500)


class RoutineView(Frame):
    """A routine as ``routines.*`` and ``/api/routines`` show it (times: ms since the epoch)."""

    id: str
    name: str
    description: str
    agent_id: str = Field(alias="agentId")
    schedule_kind: ScheduleKind = Field(alias="scheduleKind")
    schedule: str = Field(description='the schedule as text: "0 9 * * 1-5", "every 900s", "at …"')
    cron: str | None = None
    every_seconds: int | None = Field(default=None, alias="everySeconds")
    at: str | None = Field(default=None, description="ISO time of a one-time routine")
    timezone: str
    prompt: str
    enabled: bool
    target: Target
    session_key: str = Field(alias="sessionKey", description="where its runs go")
    delete_after_run: bool = Field(alias="deleteAfterRun")
    created_at: int = Field(alias="createdAt")
    updated_at: int = Field(alias="updatedAt")
    next_run_at: int | None = Field(default=None, alias="nextRunAt")
    next_runs: list[int] = Field(default_factory=list, alias="nextRuns")
    last_run_at: int | None = Field(default=None, alias="lastRunAt")
    last_status: Outcome | None = Field(default=None, alias="lastStatus")
    last_error: str | None = Field(default=None, alias="lastError")
    last_run_id: str | None = Field(default=None, alias="lastRunId")
    last_duration_ms: int | None = Field(default=None, alias="lastDurationMs")
    running_since: int | None = Field(default=None, alias="runningSince")
    consecutive_errors: int = Field(default=0, alias="consecutiveErrors")
    disabled_reason: str | None = Field(default=None, alias="disabledReason")
    config_revision: str = Field(alias="configRevision")


class RoutineRunView(Frame):
    """One time a routine came due or was run by hand (``routines.runs``,
    ``GET /api/routines/<id>/runs``): the agent run it started, or why it did not run."""

    id: int
    routine_id: str = Field(alias="routineId")
    run_id: str | None = Field(alias="runId", description="null for a skipped time")
    trigger: Literal["schedule", "manual"]
    session_key: str = Field(alias="sessionKey")
    status: Outcome
    reason: str | None = Field(default=None, description="why skipped, or the error")
    scheduled_at: int | None = Field(default=None, alias="scheduledAt")
    started_at: int | None = Field(default=None, alias="startedAt")
    ended_at: int | None = Field(default=None, alias="endedAt")
    duration_ms: int | None = Field(default=None, alias="durationMs")
    summary: str | None = Field(default=None, description="the start of the answer")
