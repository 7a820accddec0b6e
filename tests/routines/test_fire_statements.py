"""What one fire costs the database until its run is accepted: the claim (one transaction)
and the run's acceptance, which records the fire's start in the same transaction (and
makes the routine's thread again if it was deleted)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent, Message, Run, Session
from gateway.delivery.hub import reset_hub
from routines.models import Routine, RoutineRun, RoutineStatus
from routines.services import routine_create, routine_fire
from tests.routines.beat import settled

pytestmark = pytest.mark.django_db(transaction=True)

#: Statements (BEGIN and COMMIT included, SQLite) from the fire's start until its run was
#: accepted: 14 (the claim 5, the acceptance 9). It was 31 in four transactions before the
#: fire recorded its start in the run's transaction, 18 before a fire's time and a run's
#: idempotency key were left to their unique constraints instead of a read first, and the
#: session's message count became one UPDATE ... RETURNING, 15 while the claim checked
#: that the target session exists (the run's accept reads it anyway, and makes it if gone).
FIRE_BUDGET = 14


@database_sync_to_async
def _capture() -> CaptureQueriesContext:
    """Capture on the database thread (where a fire's database calls run with SQLite)."""
    captured = CaptureQueriesContext(connection)
    captured.__enter__()
    return captured


@database_sync_to_async
def _stop(captured: CaptureQueriesContext) -> list[str]:
    captured.__exit__(None, None, None)
    return [q["sql"] for q in captured.captured_queries]


@database_sync_to_async
def _routine() -> Routine:
    Agent.objects.create(id="research", model="wingman:echo")
    return routine_create(
        agent_id="research", name="News", prompt="news", cron="0 9 * * *", timezone="UTC"
    )


async def test_a_fire_until_its_run_is_accepted_is_two_transactions():
    routine = await _routine()
    scheduled = datetime(2026, 11, 30, 9, tzinfo=UTC)
    captured = await _capture()
    result = await routine_fire(routine_id=routine.pk, scheduled_at=scheduled, at=scheduled)
    statements = await _stop(captured)
    assert result.ran, result
    commits = [sql for sql in statements if sql.upper().startswith("COMMIT")]
    assert len(commits) == 2, statements
    assert len(statements) <= FIRE_BUDGET, "\n".join(statements)
    await settled()

    @database_sync_to_async
    def recorded() -> tuple[RoutineRun, Routine, Run]:
        return (
            RoutineRun.objects.get(routine=routine),
            Routine.objects.get(pk=routine.pk),
            Run.objects.get(pk=result.run_id),
        )

    record, after, run = await recorded()
    assert record.run_id == run.id and record.status == RoutineStatus.OK
    assert after.last_run_id == run.id and after.last_run_at == scheduled
    assert after.next_run_at is not None and after.next_run_at > scheduled
    await reset_hub()


async def test_a_fire_makes_the_routine_thread_again_if_it_was_deleted():
    routine = await _routine()
    key = f"agent:research:routine:{routine.pk}"
    await Session.objects.filter(key=key).adelete()
    scheduled = datetime(2026, 11, 30, 9, tzinfo=UTC)
    result = await routine_fire(routine_id=routine.pk, scheduled_at=scheduled, at=scheduled)
    assert result.ran and result.session_key == key
    await settled()
    session = await Session.objects.aget(key=key)
    assert session.name == "Routine: News" and session.agent_id == "research"
    roles = [m.role async for m in Message.objects.filter(session=session).order_by("position")]
    assert roles == ["user", "assistant"]
    await reset_hub()
