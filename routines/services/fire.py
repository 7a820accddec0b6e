"""Firing a routine: one scheduled time (or a run-now) → at most one agent run, through the
one run entry point (``agents.services.runs.run_start``), in the routine's target session.

Guards, in order: a lock per routine and scheduled time in the shared cache (with an
expiry, so a crash cannot hold it forever) keeps two beats from starting one time twice;
the unique ``(routine, scheduled_at)`` record is the durable backstop; a time later than
``WINGMAN_ROUTINES_STARTING_DEADLINE`` is skipped ``too-late`` (so after beat downtime at
most the latest missed time runs, once); a routine whose previous run is still going is
skipped ``overlap``. Skips are recorded (a ``RoutineRun`` with status ``skipped``) and
published. When the run ends (``settle``) the routine's last-run fields and error count
are updated; after ``WINGMAN_ROUTINES_MAX_ERRORS`` failures in a row it is disabled.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from agents.models import RunSource
from agents.services import runs as run_service
from agents.services.runs import RunRequest
from gateway.delivery.seat import current_seat
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.state import cache as shared
from gateway.state.db import db_call
from routines.models import Routine, RoutineRun, RoutineStatus, Trigger
from routines.services import settle
from routines.services.events import ms, publish_after_commit
from routines.services.routines import next_run, now, schedule_of, session_name, target_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FireResult:
    """What a fire did: ``ran`` with the run id, or why not (``reason``: ``not-found``,
    ``disabled``, ``not-due``, ``duplicate``, ``overlap``, ``too-late``)."""

    ran: bool
    run_id: str | None = None
    reason: str | None = None
    session_key: str | None = None
    routine_run_id: int | None = None


@dataclass(frozen=True)
class Claim:
    """A fire that runs: its record (still without a run) and what its run needs. The
    routine as claimed (its ``next_run_at`` after this fire) says ``started``."""

    routine_run_id: int
    routine: Routine
    scheduled_at: datetime | None
    at: datetime
    session_key: str
    idempotency_key: str

    @property
    def routine_id(self) -> str:
        return self.routine.pk


def lock_key(routine_id: str, scheduled_at: datetime) -> str:
    return f"routines:fire:{routine_id}:{int(scheduled_at.timestamp())}"


def _scheduled_time(routine_id: str, at: datetime) -> datetime | str | None:
    """The scheduled time a fire at ``at`` is for (the routine's latest at or before it)."""
    routine = Routine.objects.filter(pk=routine_id).first()
    if routine is None:
        return "not-found"
    return schedule_of(routine).latest_at_or_before(at)


def _skip(routine: Routine, scheduled_at: datetime | None, trigger: str, reason: str) -> FireResult:
    """Record a skipped time (once per scheduled time) and publish ``skipped``."""
    try:
        with transaction.atomic():
            record = RoutineRun.objects.create(
                routine=routine,
                scheduled_at=scheduled_at,
                trigger=trigger,
                status=RoutineStatus.SKIPPED,
                reason=reason,
                session_key=target_key(routine),
                ended_at=dj_timezone.now(),
            )
            publish_after_commit(
                "skipped",
                routine,
                status=RoutineStatus.SKIPPED,
                reason=reason,
                scheduled_at_ms=ms(scheduled_at),
            )
    except IntegrityError:
        return FireResult(False, reason="duplicate")
    return FireResult(False, reason=reason.split(":")[0], routine_run_id=record.pk)


def _open_record(routine: Routine) -> RoutineRun | None:
    """The routine's record whose run is still going (records of runs that ended without
    being settled are settled now; a fire whose process died before its run was accepted
    is ended as an error after ``settle.UNSTARTED_SECONDS``)."""
    for record in RoutineRun.objects.filter(routine=routine, status=RoutineStatus.RUNNING):
        if record.run_id is None:
            if not settle.end_unstarted(record):
                return record
        elif not settle.settle_record(record.pk):
            return record
    return None


def _claim(
    routine_id: str, scheduled_at: datetime | None, trigger: str, at: datetime, force: bool
) -> Claim | FireResult:
    """Decide whether this time runs; if so, record it (one transaction, the routine's row
    locked: every fire record of a routine is written under that lock, so the check for an
    existing record cannot race; the unique ``(routine, scheduled_at)`` stays the backstop)."""
    try:
        with transaction.atomic():
            return _decide(routine_id, scheduled_at, trigger, at, force)
    except IntegrityError:
        return FireResult(False, reason="duplicate")


def _decide(
    routine_id: str, scheduled_at: datetime | None, trigger: str, at: datetime, force: bool
) -> Claim | FireResult:
    routine = Routine.objects.select_for_update().filter(pk=routine_id).first()
    if routine is None:
        return FireResult(False, reason="not-found")
    if not routine.enabled and not force:
        return FireResult(False, reason="disabled")
    deadline = settings.WINGMAN_ROUTINES_STARTING_DEADLINE
    if scheduled_at is not None and (at - scheduled_at).total_seconds() > deadline:
        late = (at - scheduled_at).total_seconds()
        return _skip(
            routine,
            scheduled_at,
            trigger,
            f"too-late: {late:.0f} s after its time, past the {deadline:.0f} s starting deadline",
        )
    # A time fired already is told by the unique (routine, scheduled_at) of its record: the
    # insert below fails, the transaction rolls back, "duplicate" (no read first).
    running = _open_record(routine)
    if running is not None:
        return _skip(
            routine,
            scheduled_at,
            trigger,
            f"overlap: the previous run {running.run_id or '(starting)'} is still going",
        )
    key = target_key(routine)  # (made by the run's accept if it is gone: session_name)
    record = RoutineRun.objects.create(
        routine=routine, scheduled_at=scheduled_at, trigger=trigger, session_key=key
    )
    routine.next_run_at = next_run(routine, at)
    stamp = scheduled_at.isoformat() if scheduled_at else f"manual:{uuid.uuid4().hex}"
    return Claim(record.pk, routine, scheduled_at, at, key, f"routine:{routine.pk}:{stamp}")


def _started(claim: Claim, run_id: str) -> None:
    """The run service accepted the claimed run: in its transaction, link the record to it
    and set the routine's last-run fields (its next run as computed when claimed, unless
    the routine was changed meanwhile: then that change's stands)."""
    RoutineRun.objects.filter(pk=claim.routine_run_id).update(run_id=run_id)
    routine = claim.routine
    fields = {
        "last_run_at": claim.at,
        "last_run_id": run_id,
        "last_status": RoutineStatus.RUNNING,
    }
    same = Routine.objects.filter(pk=routine.pk, revision=routine.revision)
    if not same.update(next_run_at=routine.next_run_at, **fields):
        Routine.objects.filter(pk=routine.pk).update(**fields)
    publish_after_commit(
        "started",
        routine,
        status=RoutineStatus.RUNNING,
        run_id=run_id,
        session_key=claim.session_key,
        scheduled_at_ms=ms(claim.scheduled_at),
    )


def _start_failed(claim: Claim, error: str) -> None:
    """The run service refused the run (e.g. the agent was disabled): a failed run."""
    RoutineRun.objects.filter(pk=claim.routine_run_id).update(
        status=RoutineStatus.ERROR, reason=error, ended_at=dj_timezone.now()
    )
    settle.count_outcome(claim.routine_id, RoutineStatus.ERROR, error, None, None)


def fire_lock(routine_id: str, scheduled_at: datetime) -> bool:
    """Take the lock of one scheduled time of a routine for this call alone (False: a fire
    of it has it)."""
    return fire_locks([(routine_id, scheduled_at)], owner=uuid.uuid4().hex)[0]


def fire_locks(times: list[tuple[str, datetime]], *, owner: str) -> list[bool]:
    """The locks of several (routine, scheduled time) for ``owner`` (a Celery message's id:
    delivered again after its worker died, it takes its own locks again, and the unique
    record tells the times it had claimed): which of them ``owner`` holds. One round trip
    on Redis; a lock :func:`fire_lock` took belongs to no message."""
    keys = [lock_key(routine_id, scheduled_at) for routine_id, scheduled_at in times]
    return shared.claim_many(keys, owner=owner, timeout=settings.WINGMAN_ROUTINES_LOCK_SECONDS)


def fire_claim(
    *,
    routine_id: str,
    scheduled_at: datetime | None = None,
    trigger: str = Trigger.SCHEDULE,
    force: bool = False,
    at: datetime | None = None,
    locked: bool = False,
) -> Claim | FireResult:
    """The first half of a fire, sync: the lock (unless the caller took it: ``locked``) and
    the decision. A :class:`Claim` is then started by :func:`fire_start`; a
    :class:`FireResult` says why nothing runs."""
    at = at or now()
    if trigger == Trigger.SCHEDULE:
        if scheduled_at is None:
            found = _scheduled_time(routine_id, at)
            if found is None or isinstance(found, str):
                return FireResult(False, reason=found or "not-due")
            scheduled_at = found
        if not locked and not fire_lock(routine_id, scheduled_at):
            return FireResult(False, reason="duplicate")
    else:
        scheduled_at = None
    return _claim(routine_id, scheduled_at, trigger, at, force)


async def routine_fire(
    *,
    routine_id: str,
    scheduled_at: datetime | None = None,
    trigger: str = Trigger.SCHEDULE,
    force: bool = False,
    at: datetime | None = None,
    locked: bool = False,
) -> FireResult:
    """Fire one scheduled time of a routine (``scheduled_at``; None: the latest at or before
    now, as a plain beat sends it) or, with ``trigger=manual``, run it now. Starts at most
    one run (see the module doc for the guards) and returns at once; the run's end is
    followed in the background (``settle``). ``force``: run even if disabled. ``locked``:
    the caller holds :func:`fire_lock` of ``scheduled_at`` already."""
    at = at or now()
    claim = await db_call(fire_claim)(
        routine_id=routine_id,
        scheduled_at=scheduled_at,
        trigger=trigger,
        force=force,
        at=at,
        locked=locked,
    )
    if isinstance(claim, FireResult):
        return claim
    return await fire_start(claim)


async def fire_start(claim: Claim) -> FireResult:
    """The second half of a fire: start the claimed run through the run service (executed
    here when this is a worker; the record and the routine's last-run fields are written
    in the transaction that accepts the run), follow its end."""
    seat = current_seat()
    executor = "local" if seat is not None and seat.headless else None  # a worker runs it
    request = RunRequest(
        message=claim.routine.prompt,
        source=RunSource.ROUTINE,
        agent_id=claim.routine.agent_id,
        session_key=claim.session_key,
        session_name=session_name(claim.routine) or None,
        idempotency_key=claim.idempotency_key,
        on_accept=lambda run: _started(claim, run.id),
    )
    try:
        ticket = await run_service.run_start(request=request, executor=executor)
    except GatewayError as exc:
        await db_call(_start_failed)(claim, exc.message)
        return FireResult(
            False, reason=f"error: {exc.message}", routine_run_id=claim.routine_run_id
        )
    if ticket.duplicate:  # a run its key had started already (not through this claim)
        await db_call(transaction.atomic(_started))(claim, ticket.run_id)
    settle.follow_soon(claim.routine_run_id, ticket.run_id)
    return FireResult(
        True,
        run_id=ticket.run_id,
        session_key=claim.session_key,
        routine_run_id=claim.routine_run_id,
    )


def _due_time(routine_id: str, at: datetime) -> datetime | str:
    """For run-now ``due``: the scheduled time at or before ``at`` not run yet."""
    routine = Routine.objects.filter(pk=routine_id).first()
    if routine is None:
        return "not-found"
    if not routine.enabled:
        return "disabled"
    latest = schedule_of(routine).latest_at_or_before(at)
    if latest is None or RoutineRun.objects.filter(routine=routine, scheduled_at=latest).exists():
        return "not-due"
    return latest


async def routine_run_now(*, routine_id: str, mode: str = "force") -> FireResult:
    """Run a routine now. ``force``: always (even when disabled; still skipped ``overlap``
    while its previous run is going); ``due``: only if a scheduled time has come and not
    run yet (it then counts as that time). Returns the run id, or ``ran=False`` and why."""
    if mode == "due":
        at = now()
        due = await db_call(_due_time)(routine_id, at)
        if isinstance(due, str):
            return FireResult(False, reason=due)
        return await routine_fire(routine_id=routine_id, scheduled_at=due, at=at)
    if mode != "force":
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"unknown mode {mode!r}; use force or due")
    return await routine_fire(routine_id=routine_id, trigger=Trigger.MANUAL, force=True)
