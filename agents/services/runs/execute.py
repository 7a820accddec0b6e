"""One run, start to end, in the process that executes it: wait for the session's turn,
stream the agent, then persist the final state and publish exactly one terminal event
(``agent-complete`` | ``agent-error`` | ``agent-cancelled``), even on cancel, timeout, crash
or shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from django import db

from agents import selectors
from agents.models import RunStatus
from agents.services.runs import transitions, turns
from agents.services.runs.requests import HISTORY_LIMIT, RunPlan, RunTicket
from agents.services.runs.stream import RunStream
from agents.services.runs.transitions import Turn
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.state import logcontext, outage
from gateway.state.db import db_call_background

logger = logging.getLogger(__name__)

#: How often a queued run asks the database whether it is its turn: at first, then less
#: often (doubling up to the most), unless a run of its session ends in this process, which
#: wakes it at once (a run ahead that ends in another process is seen at the next ask).
TURN_POLL_SECONDS = 0.05
TURN_POLL_MAX_SECONDS = 0.5
#: ... times the runs ahead of it, up to this (each of those must start and end first).
TURN_POLL_FAR_SECONDS = 5.0
#: ... and at most this often while the database is unreachable (it rides out the outage).
TURN_RETRY_MAX_SECONDS = 1.0
#: A run waiting only behind runs of this process (executing, or waiting ahead of it here)
#: is woken when they end; it asks on its own only this often (a safety net: a burst of a
#: thousand queued runs asking every few seconds kept the database thread busy).
TURN_FOLLOW_SECONDS = 60.0


class Gone(Exception):
    """The run ended elsewhere before it could start (cancelled while queued, or lost)."""


async def execute(plan: RunPlan, stream: RunStream, ticket: RunTicket, owner: str) -> None:
    """The body of a run's task; ``ticket.final`` is the answer once it returns."""
    with turns.executing(plan.run_id):
        await _execute(plan, stream, ticket, owner)


async def _execute(plan: RunPlan, stream: RunStream, ticket: RunTicket, owner: str) -> None:
    status, error, code = RunStatus.OK, "", ""
    logcontext.run_id.set(plan.run_id)  # this task's log lines carry the run (wingman/logs.py)
    logcontext.session_key.set(plan.session_key)
    try:
        async with asyncio.timeout(plan.timeout):
            history = await _wait_turn(plan)
            logger.info("run %s started (agent %s)", plan.run_id, plan.agent_id)
            await stream.emit(
                {"type": "agent-start", "agent": plan.agent_id, "prompt": plan.prompt}
            )
            await _turn(plan, stream, history)
    except Gone:
        turns.wake(plan.session_id)  # it may have been the one the others waited behind
        return
    except asyncio.CancelledError:
        status, error = RunStatus.CANCELLED, "cancelled"
    except TimeoutError:
        status, code = RunStatus.TIMEOUT, str(ErrorCode.AGENT_TIMEOUT)
        error = f"the run timed out after {plan.timeout:g} s"
    except Exception as exc:
        status, error = RunStatus.ERROR, _describe(exc)
        if not _expected(exc):
            logger.exception("run %s failed", plan.run_id)
    # Persist and publish the end before the next queued run may start: it must see this
    # answer in its history and start after this run's terminal event.
    await asyncio.shield(finish(ticket, stream, status, error, code, owner=owner))
    logger.info("run %s ended: %s", plan.run_id, status)
    turns.wake(plan.session_id)


def _history(plan: RunPlan) -> list[tuple[str, str]]:
    return selectors.model_history(
        plan.session_id, before=plan.position, limit=HISTORY_LIMIT, run_id=plan.run_id
    )


def _take(plan: RunPlan) -> tuple[Turn, tuple[str, ...], list[tuple[str, str]] | None]:
    """Ask for the turn and, once taken, read the history the model sees, in one database
    call (None: reading it failed; the turn reads it again, and fails the run if it fails).
    """
    turn, ahead = transitions.turn_take(plan.run_id, plan.session_id)
    history = None
    if turn is Turn.STARTED:
        with contextlib.suppress(db.Error):
            history = _history(plan)
    return turn, ahead, history


async def _wait_turn(plan: RunPlan) -> list[tuple[str, str]] | None:
    """Wait (cancellable; bounded by the run's timeout) for the session's turn; returns the
    history (see :func:`_take`). The run ahead may execute in another process: the database
    says whose turn it is. A run with others ahead of it asks less often (they must start
    and end first); its prompt's position ranks it among this process's waiters for a
    wake-up. A run started when accepted has the turn already (None: ``_turn`` reads
    the history)."""
    if plan.started:
        return None
    with turns.watching(plan.session_id):
        return await _ask_until_started(plan)


async def _ask_until_started(plan: RunPlan) -> list[tuple[str, str]] | None:
    take = db_call_background(_take)
    session_id, order = plan.session_id, plan.position
    pause = TURN_POLL_SECONDS
    while True:
        seen = turns.ends(session_id)
        try:
            turn, ahead, history = await take(plan)
        except db.Error as exc:  # e.g. PostgreSQL restarting: wait, do not fail the run
            logger.warning("run %s waits for its turn: %s", plan.run_id, exc)
            pause = min(pause * 2, TURN_RETRY_MAX_SECONDS)
            await asyncio.sleep(pause)
            continue
        if turn is Turn.STARTED:
            return history
        if turn is Turn.GONE:
            raise Gone(plan.run_id)
        # Woken when a run ahead ends here: ask on its own only when first in line here
        # and a run ahead executes elsewhere.
        polls = turns.leads(session_id, order) and not turns.all_here(ahead)
        await turns.nap(session_id, pause if polls else TURN_FOLLOW_SECONDS, order, seen)
        most = min(TURN_POLL_MAX_SECONDS * len(ahead), TURN_POLL_FAR_SECONDS)
        pause = min(pause * 2, most)


async def _turn(plan: RunPlan, stream: RunStream, history: list[tuple[str, str]] | None) -> str:
    from agents.runtime.runner import AgentSpec, run_turn

    if history is None:
        history = await db_call_background(_history)(plan)
    spec = AgentSpec(
        agent_id=plan.agent_id,
        model=plan.model,
        system_prompt=plan.system_prompt,
        tools=list(plan.tools),
    )
    return await run_turn(
        spec,
        history=history,
        prompt=plan.prompt,
        working_folder=plan.working_folder,
        emit=stream.emit,
        extra_system_prompt=plan.extra_system_prompt,
    )


async def finish(
    ticket: RunTicket, stream: RunStream, status: str, error: str, code: str, *, owner: str
) -> None:
    """Persist the final state, then publish the one terminal event (unless another process
    ended the run meanwhile: then it published it)."""
    from agents.services.runs.requests import final_result

    text = stream.text()
    try:
        run = await db_call_background(transitions.finish)(
            ticket.run_id, status, text, error, code, owner=owner
        )
    except Exception:
        logger.exception("could not persist the end of run %s", ticket.run_id)
        run = None
    else:
        if run is None:
            logger.warning("run %s had already been ended elsewhere", ticket.run_id)
            return
        ticket.final = final_result(run)
    step = selectors.terminal_step(status=status, text=text, error=error, code=code or None)
    try:
        await stream.emit(step)
    except Exception:
        logger.exception("could not publish the end of run %s", ticket.run_id)


def _describe(exc: Exception) -> str:
    from agents.runtime.providers import ModelError

    if isinstance(exc, (ModelError, GatewayError)):
        return str(exc)
    if outage.is_outage(exc):
        return outage.unavailable(exc).message
    return f"{type(exc).__name__}: {exc}"


def _expected(exc: Exception) -> bool:
    """Not a bug (no traceback): the model's own errors, and Redis being unreachable."""
    from agents.runtime.offline import OfflineModelError
    from agents.runtime.providers import ModelError

    return outage.is_outage(exc) or isinstance(exc, (ModelError, OfflineModelError))
