"""The run service without a socket: submit / launch / wait / cancel and recovery, in the
orders a busy gateway can produce them."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from agents.models import Run, RunSource, RunStatus, Session
from agents.services.runs import (
    RunRequest,
    final_result,
    run_cancel,
    run_launch,
    run_submit,
    run_wait,
    runs_recover,
)
from gateway.delivery.hub import get_hub
from tests.agents.conftest import acreate_agent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def slow(hub_cleanup):
    return await acreate_agent("slowpoke", model="wingman:slow")


async def test_submit_launch_wait(slow):
    req = RunRequest(message="/stream 3", agent_id="slowpoke", source=RunSource.API)
    ticket = await run_submit(req)
    assert ticket.status == RunStatus.QUEUED and ticket.final is None
    await run_launch(ticket, req)
    run = await run_wait(ticket.run_id, 5)
    assert run is not None and run.status == RunStatus.OK
    assert final_result(run) == {
        "runId": ticket.run_id,
        "status": "ok",
        "summary": "completed",
        "result": {"text": "t0 t1 t2 ", "payloads": [{"text": "t0 t1 t2 "}]},
    }


async def test_wait_gives_none_while_running(slow):
    req = RunRequest(message="/stream 40", agent_id="slowpoke")
    ticket = await run_submit(req)
    await run_launch(ticket, req)
    assert await run_wait(ticket.run_id, 0.1) is None
    assert await run_cancel(ticket.run_id) is True
    run = await run_wait(ticket.run_id, 5)
    assert run is not None and run.status == RunStatus.CANCELLED


async def test_idempotency_is_per_source(slow):
    a = await run_submit(RunRequest(message="x", agent_id="slowpoke", idempotency_key="k"))
    b = await run_submit(RunRequest(message="x", agent_id="slowpoke", idempotency_key="k"))
    c = await run_submit(
        RunRequest(message="x", agent_id="slowpoke", idempotency_key="k", source=RunSource.API)
    )
    assert b.run_id == a.run_id and b.duplicate is True
    assert c.run_id != a.run_id and c.duplicate is False
    keyless = [await run_submit(RunRequest(message="x", agent_id="slowpoke")) for _ in range(2)]
    assert keyless[0].run_id != keyless[1].run_id
    assert await Run.objects.acount() == 4


async def test_cancel_before_launch_is_honoured(slow):
    """A cancel that arrives between the ack and the launch (the ``agent`` method launches
    in a follow-up task) must not be reported as done and then ignored."""
    req = RunRequest(message="/stream 5", agent_id="slowpoke")
    ticket = await run_submit(req)
    assert await run_cancel(ticket.run_id) is True
    await run_launch(ticket, req)
    run = await run_wait(ticket.run_id, 5)
    assert run is not None, "the run never ended"
    assert run.status == RunStatus.CANCELLED, f"cancel was acknowledged, then the run {run.status}"


async def test_cancel_before_the_task_first_runs_still_ends_the_run(slow):
    """A cancel delivered right after the launch (e.g. a control message from another
    process, handled in the same loop iteration) still settles the run: status cancelled and
    one terminal event, instead of a run stuck in 'queued' forever."""
    req = RunRequest(message="/stream 5", agent_id="slowpoke")
    ticket = await run_submit(req)
    await run_launch(ticket, req)
    hub = await get_hub()
    assert await hub.seat.send_control(hub.id, "run.cancel", {"runId": ticket.run_id})
    run = await run_wait(ticket.run_id, 5)
    stored = await Run.objects.aget(pk=ticket.run_id)
    assert run is not None, f"the run never ended (status {stored.status})"
    assert run.status == RunStatus.CANCELLED


async def test_cancel_of_a_run_whose_process_is_gone_settles_it(slow):
    session = await Session.objects.acreate(key="agent:slowpoke:main", agent=slow)
    run = await Run.objects.acreate(
        session=session, source=RunSource.WS, prompt="p", status=RunStatus.RUNNING, owner="dead0000"
    )
    assert await run_cancel(run.id) is True
    await run.arefresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.ended_at is not None
    assert await run_cancel(run.id) is False


async def test_recover_settles_runs_of_dead_processes(slow):
    session = await Session.objects.acreate(key="agent:slowpoke:main", agent=slow)
    alive = await Run.objects.acreate(
        session=session, source=RunSource.WS, prompt="a", status=RunStatus.RUNNING, owner="live"
    )
    dead = await Run.objects.acreate(
        session=session, source=RunSource.WS, prompt="b", status=RunStatus.QUEUED, owner="gone"
    )
    done = await Run.objects.acreate(
        session=session, source=RunSource.WS, prompt="c", status=RunStatus.OK, owner="gone"
    )
    recovered = await database_sync_to_async(runs_recover)(lambda owner: owner == "live")
    assert recovered == 1
    statuses = {r.id: (r.status, r.error) async for r in Run.objects.all()}
    assert statuses[alive.id] == (RunStatus.RUNNING, "")
    assert statuses[dead.id][0] == RunStatus.ERROR and "interrupted" in statuses[dead.id][1]
    assert statuses[done.id] == (RunStatus.OK, "")


async def test_ended_runs_count_toward_the_next_full_collection(slow):
    """A run's graph is cyclic garbage once it ends (gateway/delivery/memory.py)."""
    hub = await get_hub()
    before = hub.collector.ended_since
    for message in ("/stream 2", "/fail boom"):
        req = RunRequest(message=message, agent_id="slowpoke")
        ticket = await run_submit(req)
        await run_launch(ticket, req)
        run = await run_wait(ticket.run_id, 5)
        assert run is not None and run.status in (RunStatus.OK, RunStatus.ERROR)
    # the final state is persisted just before the run's task ends: give it that moment
    for _ in range(100):
        if hub.collector.ended_since == before + 2:
            break
        await asyncio.sleep(0.01)
    assert hub.collector.ended_since == before + 2
