"""A run's state changes in the database, the source of truth for which run owns a session
and for every run's state (the cache only ever speeds things up).

Each change is conditional on the state it expects, so when two processes race (a worker
finishing a run while a gateway declares its worker lost, two workers given the same task)
exactly one of them wins, and only the winner publishes the run's terminal event.
"""

from __future__ import annotations

from enum import Enum

from django.db import transaction
from django.utils import timezone

from agents.models import MessageRole, Run, RunStatus, Session
from agents.services.runs.accept import OPEN_STATUSES, Owner, append_message


class Turn(Enum):
    STARTED = "started"
    WAIT = "wait"
    #: Ended meanwhile (cancelled while queued, declared lost): do not run it.
    GONE = "gone"


def _open_runs(session_id: int) -> list[tuple[str, str]]:
    """(id, status) of the session's open runs, oldest first."""
    rows = Run.objects.filter(session_id=session_id, status__in=OPEN_STATUSES)
    return list(rows.order_by("created_at", "id").values_list("id", "status"))


def _verdict(run_id: str, open_runs: list[tuple[str, str]]) -> tuple[Turn, tuple[str, ...]] | None:
    """GONE, or WAIT with the open runs ahead (older, or running), for ``run_id`` among its
    session's open runs; None when it may start (it is queued, nothing runs, it is the
    oldest)."""
    statuses = dict(open_runs)
    if statuses.get(run_id) != RunStatus.QUEUED:
        return Turn.GONE, ()
    ids = [pk for pk, _ in open_runs]
    running = [pk for pk, status in open_runs if status == RunStatus.RUNNING]
    ahead = tuple(dict.fromkeys([*ids[: ids.index(run_id)], *running]))
    return (Turn.WAIT, ahead) if ahead else None


def turn_take(run_id: str, session_id: int) -> tuple[Turn, tuple[str, ...]]:
    """Start the run (of session ``session_id``) if it is its session's turn: no run of the
    session is running and it is the oldest queued one (a run that is not queued any more,
    or not there, is GONE). Decided again in one transaction with the session row locked, so
    two runs of one session never both start (on SQLite, IMMEDIATE transactions serialise
    writers). Returns the answer and, for WAIT, the open runs ahead."""
    # Plain reads first: while another run goes first (the common answer for a queued run),
    # no write transaction is taken (on SQLite each one holds the database's one writer lock).
    verdict = _verdict(run_id, _open_runs(session_id))
    if verdict is not None:
        return verdict
    with transaction.atomic():
        list(Session.objects.select_for_update().filter(pk=session_id).values_list("pk"))
        verdict = _verdict(run_id, _open_runs(session_id))
        if verdict is not None:
            return verdict
        started = Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=timezone.now()
        )
        return (Turn.STARTED if started else Turn.GONE), ()


def claim(run_id: str, owner: Owner) -> bool:
    """A worker takes a Celery run nobody executes yet (False: taken, or ended)."""
    return bool(
        Run.objects.filter(pk=run_id, owner="", status=RunStatus.QUEUED).update(**owner.fields())
    )


def heartbeat(run_ids: list[str]) -> None:
    """The executing process is alive: refresh its runs."""
    if run_ids:
        Run.objects.filter(pk__in=run_ids, status__in=OPEN_STATUSES).update(
            heartbeat_at=timezone.now()
        )


def finish(
    run_id: str, status: str, text: str, error: str, code: str = "", *, owner: str | None = None
) -> Run | None:
    """End an open run (its answer appended to the session); None when it had already ended
    (or, with ``owner``, when another process owns it now)."""
    with transaction.atomic():
        open_run = Run.objects.filter(pk=run_id, status__in=OPEN_STATUSES)
        if owner is not None:
            open_run = open_run.filter(owner=owner)
        ended = open_run.update(
            status=status, result=text, error=error, error_code=code, ended_at=timezone.now()
        )
        if not ended:
            return None
        run = Run.objects.select_related("session").get(pk=run_id)
        if text:
            append_message(run.session, MessageRole.ASSISTANT, text, run)
    return run
