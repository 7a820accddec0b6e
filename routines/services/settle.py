"""The end of a routine's run: the fire record's outcome, the routine's last-run fields,
its failure count (disabled after ``WINGMAN_ROUTINES_MAX_ERRORS`` in a row, saying why) and
the deletion of a finished one-time routine that asks for it. Each fire's run is followed
by the process that started it; ``settle_finished`` (the routines sweeper) catches the runs
whose follower died with its process."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone as dj_timezone

from agents.models import RunStatus
from agents.services import runs as run_service
from gateway.state.db import db_call
from routines.models import Routine, RoutineRun, RoutineStatus, ScheduleKind
from routines.services import beat
from routines.services.events import publish_after_commit
from routines.services.routines import next_run

logger = logging.getLogger(__name__)

#: Run statuses that count as a failure of the routine.
FAILED = (RunStatus.ERROR, RunStatus.TIMEOUT)
#: A fire record still without a run this long after it was made: its process died between
#: the decision and the run service accepting the run.
UNSTARTED_SECONDS = 120.0
#: How often a follower re-checks a run it waits for (it also hears the end at once).
WAIT_SLICE_SECONDS = 30.0


#: Followers in flight, referenced until they end (the loop keeps only weak references).
_following: set[asyncio.Task] = set()


def follow_soon(routine_run_id: int, run_id: str) -> None:
    """Settle the record once its run ends (a task on this loop)."""
    task = asyncio.get_running_loop().create_task(
        _follow(routine_run_id, run_id), context=contextvars.Context()
    )
    _following.add(task)
    task.add_done_callback(_following.discard)


async def _follow(routine_run_id: int, run_id: str) -> None:
    try:
        while not await run_service.run_ended(run_id, WAIT_SLICE_SECONDS):
            pass
        if not await db_call(settle_record)(routine_run_id):
            # its end could not be persisted here: as the database says, once it does
            while await run_service.run_wait(run_id, WAIT_SLICE_SECONDS) is None:
                pass
            await db_call(settle_record)(routine_run_id)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("could not settle routine run %s (the sweeper will)", routine_run_id)


def settle_record(routine_run_id: int) -> bool:
    """Record the end of a fire's run (False: its run has not ended). Idempotent."""
    with transaction.atomic():
        record = (
            RoutineRun.objects.select_for_update(of=("self",))
            .select_related("run")
            .filter(pk=routine_run_id)
            .first()
        )
        if record is None or record.status != RoutineStatus.RUNNING:
            return True
        run = record.run
        if run is None or not run.finished:
            return False
        record.status = str(run.status)
        record.reason = run.error
        record.ended_at = run.ended_at or dj_timezone.now()
        started = run.started_at or run.created_at
        record.duration_ms = max(0, int((record.ended_at - started).total_seconds() * 1000))
        record.save(update_fields=["status", "reason", "ended_at", "duration_ms"])
        count_outcome(record.routine_id, run.status, run.error, run.id, record.duration_ms)
    return True


#: What the end of a run changes on its routine.
OUTCOME_FIELDS = (
    "last_status",
    "last_error",
    "last_duration_ms",
    "consecutive_errors",
    "enabled",
    "disabled_reason",
    "revision",
    "next_run_at",
    "updated_at",
)


def count_outcome(
    routine_id: str, status: str, error: str, run_id: str | None, duration_ms: int | None
) -> None:
    """Update the routine after a run ended: last status/error, the failure count (and
    disable it after too many), delete a finished one-time routine that asks for it."""
    routine = Routine.objects.select_for_update().filter(pk=routine_id).first()
    if routine is None:
        return
    routine.last_status = status
    routine.last_error = error if status in FAILED else ""
    routine.last_duration_ms = duration_ms
    if status in FAILED:
        routine.consecutive_errors += 1
    elif status == RunStatus.OK:
        routine.consecutive_errors = 0
    limit = settings.WINGMAN_ROUTINES_MAX_ERRORS
    if routine.enabled and status in FAILED and routine.consecutive_errors >= limit:
        routine.enabled = False
        routine.disabled_reason = (
            f"disabled after {routine.consecutive_errors} failed runs in a row "
            f"(last error: {error or status})"
        )[:500]
        routine.revision += 1
    routine.next_run_at = next_run(routine)
    extra = {"status": status, "run_id": run_id, "duration_ms": duration_ms}
    if status in FAILED:
        extra["error"] = error or status
    if routine.delete_after_run and routine.schedule_kind == ScheduleKind.AT:
        beat.remove(routine.pk)
        publish_after_commit("finished", routine, **extra)
        publish_after_commit("removed", routine)
        routine.delete()
        return
    routine.save(update_fields=OUTCOME_FIELDS)
    if not routine.enabled and routine.periodic_task_id is not None:
        beat.sync(routine, schedule_changed=False)
    publish_after_commit("finished", routine, **extra)


def end_unstarted(record: RoutineRun) -> bool:
    """End a fire record that never got its run, if it is old enough (True: ended)."""
    cutoff = dj_timezone.now() - timedelta(seconds=UNSTARTED_SECONDS)
    if record.run_id is not None or record.created_at > cutoff:
        return False
    reason = "the process firing it stopped before the run was accepted"
    ended = RoutineRun.objects.filter(
        pk=record.pk, status=RoutineStatus.RUNNING, run__isnull=True
    ).update(status=RoutineStatus.ERROR, reason=reason, ended_at=dj_timezone.now())
    if ended:
        count_outcome(record.routine_id, RoutineStatus.ERROR, reason, None, None)
    return True


def settle_finished() -> int:
    """Settle every record whose run ended without being settled (a follower died with its
    process); returns how many. The routines sweeper calls it periodically."""
    settled = 0
    open_ids = RoutineRun.objects.filter(
        status=RoutineStatus.RUNNING,
        run__status__in=[
            s.value for s in RunStatus if s not in (RunStatus.QUEUED, RunStatus.RUNNING)
        ],
    ).values_list("pk", flat=True)
    for pk in list(open_ids):
        settled += bool(settle_record(pk))
    cutoff = dj_timezone.now() - timedelta(seconds=UNSTARTED_SECONDS)
    stale = RoutineRun.objects.filter(
        status=RoutineStatus.RUNNING, run__isnull=True, created_at__lt=cutoff
    )
    for record in list(stale):
        with transaction.atomic():
            settled += end_unstarted(record)
    return settled


#: How often the sweeper looks for ended runs whose routine record is still open.
SWEEP_SECONDS = 30.0


async def sweep_forever() -> None:
    """Background work of every gateway and worker: :func:`settle_finished` periodically."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await db_call(settle_finished)()
        except Exception as exc:
            logger.warning("routines sweeper: %s", exc)
