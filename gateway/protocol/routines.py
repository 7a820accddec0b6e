"""Params and read view of the canonical ``routines.*`` methods (mirrors of ``/api/routines``).

A routine on the wire (:class:`RoutineView`) is also what ``gateway/protocol/cron.py``
translates into OpenClaw's cron job read view, so both dialects describe a routine from
one shape. Rules (CRON syntax, time zones, agents, sessions) are the routine service's;
these models check types and lengths and reject unknown fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator

from gateway.protocol.base import Frame

#: Where a routine's runs go: its own thread (session ``agent:<agentId>:routine:<id>``),
#: the agent's main session, or an existing session (``sessionKey``).
Target = Literal["thread", "main", "session"]
#: A run's outcome as routines report it (``skipped``: the previous run was still going).
RunOutcome = Literal["ok", "error", "cancelled", "skipped"]

RoutineId = Field(min_length=1, max_length=64)


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


class RoutineFields(Frame):
    """What a routine is made of; every field optional (``routines.update``, PATCH)."""

    name: str | None = Field(default=None, max_length=200)
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    schedule: str | None = Field(
        default=None,
        max_length=200,
        validation_alias=AliasChoices("schedule", "cron"),
        description='5-field CRON ("0 9 * * 1-5", "@daily"), "every 15 minutes", or '
        '"at 2026-12-24T18:00+01:00" (seed 001 calls it "cron")',
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone; default: the gateway's zone"
    )
    prompt: str | None = Field(default=None, max_length=200_000)
    enabled: bool | None = None
    target: Target | None = Field(
        default=None, description="thread (default) | main | session (needs sessionKey)"
    )
    session_key: str | None = Field(
        default=None,
        alias="sessionKey",
        max_length=500,
        validation_alias=AliasChoices("sessionKey", "sessionId"),
        description="the session of target=session (seed 001 calls it sessionId)",
    )
    delete_after_run: bool | None = Field(
        default=None, alias="deleteAfterRun", description="one-shot (at) routines only"
    )

    @field_validator("name", "prompt", "schedule")
    @classmethod
    def _filled(cls, value: str | None) -> str | None:
        return _not_blank(value)

    def changes(self) -> dict[str, Any]:
        """The fields given, by Python name (what ``routine_update`` takes)."""
        return self.model_dump(exclude_unset=True, by_alias=False)


class RoutineCreateParams(RoutineFields):
    """``routines.create``: name, agent, schedule and prompt are required."""

    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)
    schedule: str = Field(
        min_length=1, max_length=200, validation_alias=AliasChoices("schedule", "cron")
    )
    prompt: str = Field(min_length=1, max_length=200_000)
    id: str | None = Field(
        default=None, max_length=64, description="chosen by the gateway when omitted"
    )


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
    """A routine as ``routines.*`` and ``/api/routines`` show it (times in ms)."""

    id: str
    name: str
    agent_id: str = Field(alias="agentId")
    schedule: str
    schedule_kind: Literal["cron", "every", "at"] = Field(alias="scheduleKind")
    every_seconds: int | None = Field(default=None, alias="everySeconds")
    at: str | None = Field(default=None, description="ISO time of a one-shot routine")
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
    last_status: RunOutcome | None = Field(default=None, alias="lastStatus")
    last_error: str | None = Field(default=None, alias="lastError")
    last_run_id: str | None = Field(default=None, alias="lastRunId")
    last_duration_ms: int | None = Field(default=None, alias="lastDurationMs")
    running_since: int | None = Field(default=None, alias="runningSince")
    consecutive_errors: int = Field(default=0, alias="consecutiveErrors")
    disabled_reason: str | None = Field(default=None, alias="disabledReason")
    config_revision: str = Field(alias="configRevision")


class RoutineRunView(Frame):
    """One run of a routine (``routines.runs``, ``GET /api/routines/<id>/runs``)."""

    run_id: str | None = Field(alias="runId", description="null for a skipped time")
    routine_id: str = Field(alias="routineId")
    session_key: str = Field(alias="sessionKey")
    status: Literal["queued", "running", "ok", "error", "cancelled", "skipped"]
    error: str | None = None
    scheduled_at: int | None = Field(default=None, alias="scheduledAt")
    started_at: int | None = Field(default=None, alias="startedAt")
    ended_at: int | None = Field(default=None, alias="endedAt")
    duration_ms: int | None = Field(default=None, alias="durationMs")
    summary: str | None = None
    manual: bool = False
