"""Following, waiting for and cancelling a run from any process, whichever executes it.

A run executing here is followed through its task; one executing elsewhere through its
session's events (the terminal event ends the wait) with the database as the fallback
(polled every ``DB_POLL_SECONDS``), and a run whose executor died is ended
``EXECUTOR_LOST`` on the spot instead of being waited for: every call tells the truth
about a dead run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

from agents.models import Run, RunStatus
from agents.services.runs import liveness, local, transitions
from agents.services.runs.local import Answer
from agents.services.runs.requests import RunTicket, final_result
from agents.services.runs.start import this_seat
from agents.services.runs.stream import session_topic
from gateway.delivery.encoded import EncodedEvent
from gateway.delivery.hub import get_hub
from gateway.delivery.seat import current_seat
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.events import AGENT_TERMINAL
from gateway.state.db import db_call

logger = logging.getLogger(__name__)

#: A run executing elsewhere is checked in the database at least this often.
DB_POLL_SECONDS = 1.0
#: How long a follower waits for another process's replay of the run it owns.
REPLAY_WAIT_SECONDS = 2.0
#: How long a cancel waits for the owner's channel to be known again (Redis restarting).
CANCEL_REACH_SECONDS = 12.0


def _load(run_id: str) -> Run | None:
    return Run.objects.select_related("session").filter(pk=run_id).first()


async def run_get(run_id: str) -> Run:
    run = await db_call(_load)(run_id)
    if run is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no run {run_id!r}")
    return run


async def _settle_if_lost(run: Run) -> Run:
    """``run`` as it stands; ended ``EXECUTOR_LOST`` first when its executor is gone."""
    seat = await this_seat()
    if run.finished or liveness.owner_alive(run, seat.id):
        return run
    ended = await db_call(liveness.end_lost)(run)
    if ended is not None:
        await liveness.publish_end(ended)
    return await run_get(run.id)


async def run_wait(run_id: str, wait_seconds: float) -> Run | None:
    """The finished run, or None if it is still going after ``wait_seconds``. A run
    executing here is waited for without reading it first (its process is alive)."""
    active = local.here().active.get(run_id)
    if active is None:
        run = await _settle_if_lost(await run_get(run_id))
        if run.finished:
            return run
        active = local.here().active.get(run_id)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_seconds):
            if active is not None:
                await active.done.wait()
            else:
                await _wait_elsewhere(run)
    run = await run_get(run_id)
    return run if run.finished else None


async def run_ended(run_id: str, wait_seconds: float) -> bool:
    """Whether the run has ended, waiting up to ``wait_seconds``: a run executing here
    without reading the database (the caller reads what it needs once), else as
    :func:`run_wait`."""
    active = local.here().active.get(run_id)
    if active is None:
        return await run_wait(run_id, wait_seconds) is not None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_seconds):
            await active.done.wait()
    return active.done.is_set()


async def _wait_elsewhere(run: Run) -> None:
    """Until the run's terminal event arrives, or the database (or its executor's death)
    says it ended. A worker (no sockets, no hub) asks the database only."""
    seat = current_seat()
    if seat is not None and seat.headless:
        while not (await _settle_if_lost(await run_get(run.id))).finished:  # noqa: ASYNC110
            await asyncio.sleep(DB_POLL_SECONDS)
        return
    hub = await get_hub()
    listener = await hub.listen(session_topic(run.session.key), key=run.id, want=_terminal)
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DB_POLL_SECONDS):
                    async for _ in listener:  # the run's terminal event
                        return
            if (await _settle_if_lost(await run_get(run.id))).finished:
                return
    finally:
        await hub.unlisten(listener)


def _terminal(event: EncodedEvent) -> bool:
    """A run's terminal event. Parsed only when its text names a terminal type, so the
    run's streamed chunks (thousands a second) cost a substring search each, not a parse."""
    text = event.payload_json
    if not any(kind in text for kind in AGENT_TERMINAL):
        return False
    return json.loads(text).get("type") in AGENT_TERMINAL


async def run_follow(ticket: RunTicket, send: Answer) -> None:
    """``send`` the run's final result once it has ended. A run executing here calls
    ``send`` itself, right after its terminal event and before it counts as ended: shutdown
    waits for the runs, so even a run cancelled by SIGTERM answers before ``shutdown``."""
    if ticket.final is None:
        active = local.here().active.get(ticket.run_id)
        if active is not None and not active.answered:
            active.answers.append(send)
            return
        run = await run_wait(ticket.run_id, 86_400)
        ticket.final = final_result(run) if run else None
    if ticket.final is not None:
        await send(ticket.final)


async def run_cancel(run_id: str) -> bool:
    """Cancel a queued or running run wherever it executes. False when it had already
    ended, or when its executor had died (the run is then ended ``EXECUTOR_LOST``)."""
    run = await run_get(run_id)
    if run.finished:
        return False
    if local.cancel(run_id):
        return True
    if not run.owner:  # a Celery run no worker has claimed yet: end it here
        return await _cancel_unclaimed(run)
    if not liveness.owner_alive(run, (await this_seat()).id):
        await _settle_if_lost(run)
        return False
    return await _ask_owner(run)


async def _cancel_unclaimed(run: Run) -> bool:
    ended = await db_call(transitions.finish)(
        run.id, RunStatus.CANCELLED, "", "cancelled", owner=""
    )
    if ended is None:  # a worker claimed it meanwhile
        return await run_cancel(run.id)
    await liveness.publish_end(ended)
    return True


async def _ask_owner(run: Run) -> bool:
    """``run.cancel`` to the owning process (its channel may be briefly unknown while
    Redis restarts: retried, then UNAVAILABLE)."""
    seat = await this_seat()
    deadline = asyncio.get_running_loop().time() + CANCEL_REACH_SECONDS
    while not await seat.send_control(run.owner, local.CONTROL_CANCEL, {"runId": run.id}):
        if asyncio.get_running_loop().time() > deadline:
            raise GatewayError(
                ErrorCode.UNAVAILABLE,
                f"the process executing run {run.id} cannot be reached; try again",
                retryable=True,
            )
        await asyncio.sleep(0.5)
    return True


async def run_replay(run: Run) -> dict[str, Any] | None:
    """The run so far (:meth:`RunStream.snapshot`: ``{seq, events}``) from the process that
    executes it, this one or another; None when no process has it: not launched yet,
    already ended, or its owner did not answer within ``REPLAY_WAIT_SECONDS``."""
    active = local.here().active.get(run.id)
    if active is not None:
        return active.stream.snapshot()
    hub = await get_hub()
    if not run.owner or run.owner == hub.id or not hub.seat.shared:
        return None
    reply_topic = f"run-replay:{secrets.token_hex(8)}"
    listener = await hub.listen(reply_topic)
    try:
        data = {"runId": run.id, "replyTo": reply_topic}
        if not await hub.seat.send_control(run.owner, local.CONTROL_REPLAY, data):
            return None
        async with asyncio.timeout(REPLAY_WAIT_SECONDS):
            reply = json.loads((await anext(listener)).payload_json)
        return reply or None
    except TimeoutError:
        logger.warning("no replay of run %s from its process %s", run.id, run.owner)
        return None
    finally:
        await hub.unlisten(listener)
