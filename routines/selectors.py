"""Reading routines: lists, one routine, its run history and its next run times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet

from agents.routing import routine_session_key, session_key
from routines.models import Routine, RoutineRun, RoutineStatus, TargetKind
from routines.schedules import build

#: Next run times shown by default (the Control UI shows 5).
NEXT_RUNS = 5
MAX_PAGE = 500


@dataclass(frozen=True)
class Page:
    """One page of a list: ``items``, ``total`` matching, and where the next page starts
    (``next_offset`` None: this was the last)."""

    items: list[Any]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


def routine_get(*, routine_id: str) -> Routine | None:
    """One routine (with its agent), or None."""
    return Routine.objects.select_related("agent").filter(pk=routine_id).first()


def routine_list(
    *,
    agent_id: str | None = None,
    enabled: bool | None = None,
    query: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Routines by creation order, filtered by agent, enabled state and a text ``query``
    (name, description or prompt contains it), paged (``limit`` ≤ 500)."""
    rows: QuerySet[Routine] = Routine.objects.select_related("agent")
    if agent_id:
        rows = rows.filter(agent_id=agent_id)
    if enabled is not None:
        rows = rows.filter(enabled=enabled)
    if query:
        rows = rows.filter(
            Q(name__icontains=query) | Q(description__icontains=query) | Q(prompt__icontains=query)
        )
    offset, limit = max(0, offset), max(1, min(limit, MAX_PAGE))
    return Page(list(rows[offset : offset + limit]), rows.count(), offset, limit)


def routine_runs(
    *, routine_id: str, status: str | None = None, offset: int = 0, limit: int = 50
) -> Page:
    """A routine's fire records, newest first, each with its agent Run (``record.run``,
    None for a skip): ``status`` filters (running, ok, error, cancelled, timeout, skipped)."""
    rows = RoutineRun.objects.filter(routine_id=routine_id).select_related("run")
    if status:
        rows = rows.filter(status=status)
    offset, limit = max(0, offset), max(1, min(limit, MAX_PAGE))
    return Page(list(rows[offset : offset + limit]), rows.count(), offset, limit)


def next_runs(
    *, routine: Routine, count: int = NEXT_RUNS, after: datetime | None = None
) -> list[datetime]:
    """The routine's next ``count`` run times (UTC; empty when disabled or never again)."""
    if not routine.enabled:
        return []
    schedule = build(
        kind=routine.schedule_kind,
        timezone=routine.timezone,
        cron=routine.cron,
        every=routine.every_seconds,
        at=routine.at,
        anchor=routine.anchor_at,
    )
    if (
        routine.schedule_kind == "at"
        and routine.runs.exclude(status=RoutineStatus.SKIPPED).exists()
    ):
        return []
    return schedule.next_runs(count, after or datetime.now(UTC))


def routine_session(routine: Routine) -> str:
    """The key of the session the routine's runs go to."""
    if routine.target_kind == TargetKind.MAIN:
        return session_key(routine.agent_id, None)
    if routine.target_kind == TargetKind.SESSION:
        return routine.target_session_key
    return routine_session_key(routine.agent_id, routine.pk)


def counts() -> dict[str, int]:
    """For the Status page: routines stored and enabled."""
    return {
        "routines": Routine.objects.count(),
        "routinesEnabled": Routine.objects.filter(enabled=True).count(),
    }
