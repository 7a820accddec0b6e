"""Routine methods on the gateway's method registry: the canonical ``routines.*`` (mirrors of
``/api/routines``) and OpenClaw's ``cron.*``, so the real ``openclaw cron`` CLI manages
routines unmodified (tests/fixtures/real-client-frames/OPENCLAW_CRON_NODES.md).

Both families call the same routine services; ``cron.*`` translates its params and answers
with ``gateway/protocol/cron.py``. Scopes as OpenClaw's: reads need ``operator.read``
(``operator.write`` and ``operator.admin`` include it), changes and runs ``operator.admin``
(declared with the registry, enforced for every method by ``gateway/security/scopes.py``).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from gateway.protocol import cron
from gateway.protocol.routines import (
    RoutineCreateParams,
    RoutineIdParams,
    RoutineRunsParams,
    RoutinesListParams,
    RoutineUpdateParams,
)
from gateway.protocol.system import NoParams
from gateway.rpc import CallContext, registry
from routines import wire

db = database_sync_to_async

#: Changes and runs need what OpenClaw's CLI asks for them; reads take the registry's
#: default (``operator.read``, which ``operator.write`` and ``operator.admin`` include).
ADMIN = "operator.admin"


# routines.* --------------------------------------------------------------------------------
@registry.method("routines.list", RoutinesListParams)
async def routines_list(ctx: CallContext, params: RoutinesListParams) -> dict[str, Any]:
    """Routines (optionally one agent's, or only enabled/disabled ones), by name."""
    views = await db(wire.routine_views)(agent_id=params.agent_id, enabled=params.enabled)
    return {"routines": views}


@registry.method("routines.get", RoutineIdParams)
async def routines_get(ctx: CallContext, params: RoutineIdParams) -> dict[str, Any]:
    """One routine with its next runs and last outcome."""
    return await db(wire.routine_view_of)(params.id)


@registry.method("routines.create", RoutineCreateParams, scope=ADMIN)
async def routines_create(ctx: CallContext, params: RoutineCreateParams) -> dict[str, Any]:
    """A new routine (enabled unless ``enabled: false``)."""
    return await db(wire.create)(params.changes())


@registry.method("routines.update", RoutineUpdateParams, scope=ADMIN)
async def routines_update(ctx: CallContext, params: RoutineUpdateParams) -> dict[str, Any]:
    """Change some fields; ``expectedRevision`` refuses the edit (CONFLICT) if it changed."""
    return await db(wire.update)(params.id, params.changes(), expected=params.expected_revision)


@registry.method("routines.delete", RoutineIdParams, scope=ADMIN)
async def routines_delete(ctx: CallContext, params: RoutineIdParams) -> dict[str, Any]:
    """Delete a routine (its thread and past runs stay)."""
    await db(wire.delete)(params.id)
    return {"id": params.id, "deleted": True}


@registry.method("routines.run", RoutineIdParams, scope=ADMIN)
async def routines_run(ctx: CallContext, params: RoutineIdParams) -> dict[str, Any]:
    """Run a routine now: ``{routineId, runId, sessionKey, status:"accepted"}``, or
    ``{routineId, runId: null, status: "skipped", reason}`` when its last run still goes."""
    return await wire.run_now(params.id)


@registry.method("routines.runs", RoutineRunsParams)
async def routines_runs(ctx: CallContext, params: RoutineRunsParams) -> dict[str, Any]:
    """A routine's runs (and skipped times), newest first."""
    runs, total = await db(wire.run_views)(params.id, limit=params.limit)
    return {"routineId": params.id, "runs": runs, "total": total}


# cron.* (OpenClaw) -------------------------------------------------------------------------
@registry.method("cron.status")
async def cron_status(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """The scheduler: on or off, how many jobs, when it next fires."""
    return await db(wire.scheduler_status)()


@registry.method("cron.list", cron.CronListParams)
async def cron_list(ctx: CallContext, params: cron.CronListParams) -> dict[str, Any]:
    """One page of jobs with the inventory fields the CLI checks."""
    return await db(wire.cron_page)(params)


@registry.method("cron.get", cron.JobIdParams)
async def cron_get(ctx: CallContext, params: cron.JobIdParams) -> dict[str, Any]:
    """One job; an unknown id (or a job's name) answers CRON_JOB_NOT_FOUND."""
    return cron.job_view(await db(wire.job_routine)(params.id))


@registry.method("cron.add", cron.CronAddParams, scope=ADMIN)
async def cron_add(ctx: CallContext, params: cron.CronAddParams) -> dict[str, Any]:
    """A new routine from a cron job (schedule kinds cron, every, at)."""
    routine = await db(wire.create)(cron.routine_fields(params), cron_field_names=True)
    return cron.job_view(routine) | {"deliveryPreview": cron.delivery_preview(routine)}


@registry.method("cron.update", cron.CronUpdateParams, scope=ADMIN)
async def cron_update(ctx: CallContext, params: cron.CronUpdateParams) -> dict[str, Any]:
    """Patch a job; a stale ``expectedConfigRevision`` answers CRON_JOB_CHANGED."""
    routine = await db(wire.cron_update)(params)
    return cron.job_view(routine)


@registry.method("cron.remove", cron.JobIdParams, scope=ADMIN)
async def cron_remove(ctx: CallContext, params: cron.JobIdParams) -> dict[str, Any]:
    """Delete a job (its routine); its thread and past runs stay."""
    await db(wire.cron_remove)(params.id)
    return {"ok": True, "removed": True}


@registry.method("cron.run", cron.CronRunParams, scope=ADMIN)
async def cron_run(ctx: CallContext, params: cron.CronRunParams) -> dict[str, Any]:
    """``{ok, enqueued, runId}``, or ``{ok, ran: false, reason}`` (not-due, already-running)."""
    return await wire.cron_run(params.id, due_only=params.mode == "due")


@registry.method("cron.runs", cron.CronRunsParams)
async def cron_runs(ctx: CallContext, params: cron.CronRunsParams) -> dict[str, Any]:
    """Finished runs of a job (or of every job), newest first, paged."""
    return await db(wire.cron_runs)(params)
