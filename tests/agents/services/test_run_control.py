"""Control messages about runs reach a process from its start: the run service registers
its handlers when the app is ready (agents/apps.py), not when this process first runs
something, so a ``run.cancel`` that arrives first is not dropped."""

from __future__ import annotations

import pytest

from agents.models import RunStatus
from agents.services.runs import RunRequest, run_start, run_wait
from gateway.delivery.hub import get_hub
from tests.agents.conftest import acreate_agent

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_cancel_reaching_a_fresh_process_before_its_first_run_is_kept(hub_cleanup):
    await acreate_agent("slowpoke", model="wingman:slow")
    hub = await get_hub()  # a fresh process: nothing ran here yet
    delivered = []

    async def cancel_from_elsewhere(ticket):
        """Another process cancels the run: its control message reaches this process
        after the run was accepted here, before it was launched (its first run)."""
        data = {"runId": ticket.run_id}
        delivered.append(await hub.seat.send_control(hub.id, "run.cancel", data))

    req = RunRequest(message="/stream 5", agent_id="slowpoke", before_start=cancel_from_elsewhere)
    ticket = await run_start(request=req)
    assert delivered == [True], "the control message found no handler"
    run = await run_wait(ticket.run_id, 5)
    assert run is not None, "the run never ended"
    assert run.status == RunStatus.CANCELLED, f"the cancel was dropped: the run ended {run.status}"
