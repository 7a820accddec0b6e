"""The one entry point that starts a run, from any source (WebSocket, REST, CLI, routines,
webhooks, rooms), in any process; and what a Celery worker does with a run it is given."""

from __future__ import annotations

import asyncio
import logging

from agents.models import MessageRole, Run
from agents.services.runs import dispatch, liveness, local, transitions
from agents.services.runs.accept import accept
from agents.services.runs.requests import RunPlan, RunRequest, RunTicket
from agents.services.runs.stream import session_topic
from gateway.delivery import publish
from gateway.delivery.hub import get_hub
from gateway.delivery.seat import Seat, current_seat
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.state.db import db_call

logger = logging.getLogger(__name__)


async def this_seat() -> Seat:
    """This process's seat: a worker's own, else the gateway hub's (started on first use)."""
    seat = current_seat()
    if seat is not None and seat.headless:
        return seat
    return (await get_hub()).seat


async def run_start(*, request: RunRequest, executor: str | None = None) -> RunTicket:
    """Accept a run (or find the one a retried idempotency key already started) and hand it
    to its executor: this process's event loop (``local``) or a Celery worker (``celery``;
    default: ``WINGMAN_RUN_EXECUTOR``). Returns at once; the run streams its events to the
    session's topic and ends with exactly one terminal event."""
    if not request.message or not request.message.strip():
        raise GatewayError(ErrorCode.INVALID_REQUEST, "message must not be empty")
    kind = "local" if request.observer is not None else dispatch.executor_for(executor)
    seat = await this_seat()
    owner = liveness.this_process(seat.id) if kind == "local" else None
    ticket, plan = await db_call(accept)(request, executor=kind, owner=owner)
    if plan is None:
        return ticket
    if request.before_start is not None:
        await request.before_start(ticket)
    if kind == "local":
        local.launch(plan, seat, request.observer)
    else:
        dispatch.send_soon(plan.run_id)
    await _announce(ticket, request)
    return ticket


async def _announce(ticket: RunTicket, request: RunRequest) -> None:
    """The user's message, to the session's other subscribers (not the one who sent it)."""
    if request.requester is None:
        return
    message = {"role": MessageRole.USER.value, "content": request.message, "runId": ticket.run_id}
    await publish.publish_topic(
        session_topic(ticket.session_key),
        "session.message",
        {"sessionKey": ticket.session_key, "message": message},
        exclude=request.requester,
    )


async def run_execute_claimed(run_id: str) -> None:
    """A worker was given a run: claim it, execute it here, return once it ended. A run
    claimed already (a duplicate delivery) is left to its owner, unless that owner is
    gone: then it is ended ``EXECUTOR_LOST`` now."""
    seat = await this_seat()
    owner = liveness.this_process(seat.id)
    if not await db_call(transitions.claim)(run_id, owner):
        await _claimed_elsewhere(run_id, seat.id)
        return
    plan = await db_call(RunPlan.load)(run_id)
    active = local.launch(plan, seat)
    await asyncio.shield(active.done.wait())


async def _claimed_elsewhere(run_id: str, me: str) -> None:
    run = await Run.objects.select_related("session").filter(pk=run_id).afirst()
    if run is None or run.finished or liveness.owner_alive(run, me):
        return
    ended = await db_call(liveness.end_lost)(run)
    if ended is not None:
        await liveness.publish_end(ended)
