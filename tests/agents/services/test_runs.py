"""The run service without a socket: start / wait / cancel and lost runs, in the orders a
busy gateway can produce them."""

from __future__ import annotations

import asyncio

import pytest

from agents.models import Run, RunSource, RunStatus, Session
from agents.services.runs import (
    EXECUTOR_LOST,
    RunRequest,
    final_result,
    run_cancel,
    run_ended,
    run_start,
    run_wait,
)
from gateway.delivery import memory
from gateway.delivery.hub import get_hub
from tests.agents.conftest import acreate_agent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def slow(hub_cleanup):
    return await acreate_agent("slowpoke", model="wingman:slow")


async def test_start_wait(slow):
    req = RunRequest(message="/stream 3", agent_id="slowpoke", source=RunSource.API)
    ticket = await run_start(request=req)
    # a local run of a session with nothing open starts when accepted
    assert ticket.status == RunStatus.RUNNING and ticket.final is None
    run = await run_wait(ticket.run_id, 5)
    assert run is not None and run.status == RunStatus.OK
    assert final_result(run) == {
        "runId": ticket.run_id,
        "status": "ok",
        "summary": "completed",
        "result": {"text": "t0 t1 t2 ", "payloads": [{"text": "t0 t1 t2 "}]},
    }


async def test_a_run_behind_an_open_one_is_queued_and_starts_after_it(slow):
    key = "agent:slowpoke:main"
    first = await run_start(request=RunRequest(message="/stream 5", session_key=key))
    second = await run_start(request=RunRequest(message="/stream 1", session_key=key))
    assert first.status == RunStatus.RUNNING
    assert second.status == RunStatus.QUEUED and second.position == 1
    a, b = await run_wait(first.run_id, 5), await run_wait(second.run_id, 5)
    assert a.status == b.status == RunStatus.OK
    assert b.started_at >= a.ended_at


async def test_wait_gives_none_while_running(slow):
    req = RunRequest(message="/stream 40", agent_id="slowpoke")
    ticket = await run_start(request=req)
    assert await run_wait(ticket.run_id, 0.1) is None
    assert await run_cancel(ticket.run_id) is True
    run = await run_wait(ticket.run_id, 5)
    assert run is not None and run.status == RunStatus.CANCELLED


async def test_idempotency_is_per_source(slow):
    def start(**fields):
        return run_start(request=RunRequest(message="x", agent_id="slowpoke", **fields))

    a = await start(idempotency_key="k")
    b = await start(idempotency_key="k")
    c = await start(idempotency_key="k", source=RunSource.API)
    assert b.run_id == a.run_id and b.duplicate is True
    assert c.run_id != a.run_id and c.duplicate is False
    keyless = [await start() for _ in range(2)]
    assert keyless[0].run_id != keyless[1].run_id
    assert await Run.objects.acount() == 4


async def test_cancel_between_accept_and_launch_is_honoured(slow):
    """A cancel that arrives after the run is accepted but before it is launched (another
    process's control message, while the caller subscribes) is not reported as done and
    then ignored."""
    answers = []

    async def cancel_now(ticket):
        answers.append(await run_cancel(ticket.run_id))

    req = RunRequest(message="/stream 5", agent_id="slowpoke", before_start=cancel_now)
    ticket = await run_start(request=req)
    assert answers == [True]
    run = await run_wait(ticket.run_id, 5)
    assert run is not None, "the run never ended"
    assert run.status == RunStatus.CANCELLED, f"cancel was acknowledged, then the run {run.status}"


async def test_cancel_before_the_task_first_runs_still_ends_the_run(slow):
    """A cancel delivered right after the launch (e.g. a control message from another
    process, handled in the same loop iteration) still settles the run: status cancelled and
    one terminal event, instead of a run stuck in 'queued' forever."""
    req = RunRequest(message="/stream 5", agent_id="slowpoke")
    ticket = await run_start(request=req)
    hub = await get_hub()
    assert await hub.seat.send_control(hub.id, "run.cancel", {"runId": ticket.run_id})
    run = await run_wait(ticket.run_id, 5)
    stored = await Run.objects.aget(pk=ticket.run_id)
    assert run is not None, f"the run never ended (status {stored.status})"
    assert run.status == RunStatus.CANCELLED


async def test_cancel_of_a_run_whose_process_is_gone_tells_the_truth(slow):
    """Its executor died: the cancel does not pretend (cancelled: false); the run is ended
    EXECUTOR_LOST on the spot, and its session is free again."""
    session = await Session.objects.acreate(key="agent:slowpoke:main", agent=slow)
    run = await Run.objects.acreate(
        session=session,
        source=RunSource.WS,
        prompt="p",
        status=RunStatus.RUNNING,
        owner="dead0000",
        owner_host="elsewhere",
    )
    assert await run_cancel(run.id) is False
    await run.arefresh_from_db()
    assert (run.status, run.error_code) == (RunStatus.ERROR, EXECUTOR_LOST)
    assert run.ended_at is not None
    assert final_result(run)["error"]["code"] == EXECUTOR_LOST
    assert await run_cancel(run.id) is False
    again = await run_start(request=RunRequest(message="/stream 1", session_key=session.key))
    assert (await run_wait(again.run_id, 5)).status == RunStatus.OK


async def test_ended_runs_count_toward_the_next_full_collection(slow):
    """A run's graph is cyclic garbage once it ends (gateway/delivery/memory.py)."""
    hub = await get_hub()
    before = hub.collector.ended_since
    for message in ("/stream 2", "/fail boom"):
        req = RunRequest(message=message, agent_id="slowpoke")
        ticket = await run_start(request=req)
        run = await run_wait(ticket.run_id, 5)
        assert run is not None and run.status in (RunStatus.OK, RunStatus.ERROR)
    # the final state is persisted just before the run's task ends: give it that moment
    expected = before + 2 * memory.RUN  # a run counts a tenth of a closed socket
    for _ in range(100):
        if hub.collector.ended_since == pytest.approx(expected):
            break
        await asyncio.sleep(0.01)
    assert hub.collector.ended_since == pytest.approx(expected)


async def test_on_accept_is_part_of_the_transaction_that_persists_the_run(slow):
    seen: list[tuple[str, bool]] = []

    def record(run: Run) -> None:
        # inside the transaction: the run and its user message are there, not committed
        seen.append((run.id, Run.objects.filter(pk=run.id).exists()))

    ticket = await run_start(request=RunRequest(message="x", agent_id="slowpoke", on_accept=record))
    assert seen == [(ticket.run_id, True)]
    assert (await run_wait(ticket.run_id, 5)).status == RunStatus.OK

    def refuse(run: Run) -> None:
        raise RuntimeError("the caller's side failed")

    with pytest.raises(RuntimeError):
        await run_start(request=RunRequest(message="y", agent_id="slowpoke", on_accept=refuse))
    prompts = [r.prompt async for r in Run.objects.all()]
    assert prompts == ["x"]  # nothing of the refused run was persisted
    session = await Session.objects.aget(key=ticket.session_key)
    assert session.message_count == 2  # x and its answer; no message of y
    first = await run_start(
        request=RunRequest(message="z", agent_id="slowpoke", idempotency_key="z", on_accept=record)
    )
    again = await run_start(
        request=RunRequest(message="z", agent_id="slowpoke", idempotency_key="z", on_accept=refuse)
    )
    assert again.duplicate and again.run_id == first.run_id  # not called for a duplicate
    assert (await run_wait(first.run_id, 5)).status == RunStatus.OK


async def test_run_ended_waits_for_a_run_executing_here(slow):
    ticket = await run_start(request=RunRequest(message="/stream 40", agent_id="slowpoke"))
    assert await run_ended(ticket.run_id, 0.1) is False
    assert await run_cancel(ticket.run_id) is True
    assert await run_ended(ticket.run_id, 5) is True  # through its task here
    assert await run_ended(ticket.run_id, 0) is True  # no longer here: from the database
    assert (await run_wait(ticket.run_id, 0)).status == RunStatus.CANCELLED
