"""The runs executing in this process: asyncio tasks on its event loop (the gateway's in the
embedded default, a Celery worker's runtime loop in the scaled setup).

Each run is a task started in a fresh context (it outlives whoever asked, and a request's
context ties thread-sensitive database calls to an executor that ends with that request).
The process refreshes its runs' ``heartbeat_at`` while any execute, answers the control
messages other processes send about them (``run.cancel``, ``run.replay``), and on shutdown
cancels them and lets each persist, publish its end and answer its requester.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agents.models import RunStatus
from agents.services.runs import liveness, transitions
from agents.services.runs.execute import execute, finish
from agents.services.runs.requests import Observer, RunPlan, RunTicket
from agents.services.runs.stream import RunStream
from gateway.delivery import memory, publish
from gateway.delivery.seat import Seat
from gateway.state.db import db_call_background

logger = logging.getLogger(__name__)

CONTROL_CANCEL = "run.cancel"
CONTROL_REPLAY = "run.replay"
#: On shutdown, cancelled runs get this long to settle (within the server's drain).
SHUTDOWN_RUNS_SECONDS = 2.0

Answer = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Active:
    """A run executing here."""

    task: asyncio.Task
    done: asyncio.Event
    ticket: RunTicket
    stream: RunStream
    #: Called with the final result before the run counts as ended (``agent``'s second
    #: reply): shutdown waits for the runs, so these go out before it.
    answers: list[Answer] = field(default_factory=list)
    answered: bool = False


class LocalRuns:
    """This process's executing runs (one per event loop)."""

    def __init__(self) -> None:
        self.active: dict[str, Active] = {}
        #: Cancels that arrived before the run was launched here.
        self.cancelled_early: set[str] = set()
        self._heartbeat: asyncio.Task | None = None

    def ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat(), name="runs-heartbeat", context=contextvars.Context()
            )

    async def _beat(self) -> None:
        """Refresh this process's runs while there are any."""
        while self.active:
            await asyncio.sleep(liveness.heartbeat_seconds())
            try:
                await db_call_background(transitions.heartbeat)(list(self.active))
            except Exception as exc:
                logger.warning("could not refresh this process's runs: %s", exc)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalRuns] = (
    weakref.WeakKeyDictionary()
)


def here() -> LocalRuns:
    """The runs of the running event loop."""
    loop = asyncio.get_running_loop()
    runs = _by_loop.get(loop)
    if runs is None:
        runs = _by_loop[loop] = LocalRuns()
    return runs


def launch(plan: RunPlan, seat: Seat, observer: Observer | None = None) -> Active:
    """Execute an accepted run here (its owner is this process's ``seat``)."""
    runs = here()
    ticket = plan.ticket()
    stream = RunStream(ticket, observer)
    done = asyncio.Event()
    task = seat.loop.create_task(
        execute(plan, stream, ticket, seat.id),
        name=f"run-{plan.run_id}",
        context=contextvars.Context(),
    )
    active = runs.active[plan.run_id] = Active(task, done, ticket, stream)
    task.add_done_callback(lambda t: _ended(runs, active, seat, t))
    runs.ensure_heartbeat()
    if plan.run_id in runs.cancelled_early:  # cancelled between accept and launch
        runs.cancelled_early.discard(plan.run_id)
        task.cancel()
    return active


#: Tasks started from callbacks, referenced until they end (the loop keeps only weak ones).
_settling: set[asyncio.Task] = set()


def _background(seat: Seat, coro) -> None:
    task = seat.loop.create_task(coro, context=contextvars.Context())
    _settling.add(task)
    task.add_done_callback(_settling.discard)


def _ended(runs: LocalRuns, active: Active, seat: Seat, task: asyncio.Task) -> None:
    if not task.cancelled():
        _background(seat, _answer(runs, active, seat))
        return
    # Cancelled before its first step: execute never ran, so settle the run here.
    ticket = active.ticket
    settle = finish(ticket, active.stream, RunStatus.CANCELLED, "cancelled", "", owner=seat.id)

    async def settled() -> None:
        await settle
        await _answer(runs, active, seat)

    _background(seat, settled())


async def _final(active: Active) -> dict[str, Any] | None:
    """The run's final result: from its end here, or from the database when it was ended
    elsewhere (cancelled while queued, declared lost)."""
    from agents.models import Run
    from agents.services.runs.requests import final_result

    if active.ticket.final is None:
        run = await Run.objects.filter(pk=active.ticket.run_id).afirst()
        if run is not None and run.finished:
            active.ticket.final = final_result(run)
    return active.ticket.final


async def _answer(runs: LocalRuns, active: Active, seat: Seat) -> None:
    """Send the final result to the run's followers (after its terminal event), then let
    the run count as ended."""
    active.answered = True
    try:
        final = await _final(active)
    except Exception:
        logger.exception("could not read the end of run %s", active.ticket.run_id)
        final = None
    for send in active.answers if final is not None else ():
        try:
            await send(final)
        except Exception:
            logger.warning("could not send the final result of run %s", active.ticket.run_id)
    active.done.set()
    if runs.active.pop(active.ticket.run_id, None) is not None:
        seat.collector.ended(memory.RUN)  # the run is cyclic garbage now


def cancel(run_id: str) -> bool:
    """Cancel a run executing here (False: not here)."""
    active = here().active.get(run_id)
    if active is None:
        return False
    active.task.cancel()
    return True


async def on_cancel_control(data: dict[str, Any]) -> None:
    """``run.cancel`` from another process."""
    run_id = str(data.get("runId"))
    if not cancel(run_id):  # accepted for this process but not launched yet
        here().cancelled_early.add(run_id)


async def on_replay_control(data: dict[str, Any]) -> None:
    """``run.replay`` from another process: the run so far, on a one-off reply topic."""
    active = here().active.get(str(data.get("runId")))
    snapshot = active.stream.snapshot() if active is not None else {}
    await publish.publish_topic(str(data["replyTo"]), "run.replay", snapshot)


async def shutdown() -> None:
    """Cancel this process's runs; let them persist, publish their end and answer their
    requesters (bounded, so a gateway's drain still tells every client in time)."""
    active = list(here().active.values())
    for item in active:
        item.task.cancel()
    if active:
        ended = [asyncio.ensure_future(a.done.wait()) for a in active]
        _, late = await asyncio.wait(ended, timeout=SHUTDOWN_RUNS_SECONDS)
        for waiter in late:
            waiter.cancel()


def stats() -> dict[str, int]:
    """``activeSessions`` for ``/health``: sessions with a run executing in this process."""
    try:
        runs = here()
    except RuntimeError:  # no event loop: nothing runs here
        return {"activeSessions": 0}
    return {"activeSessions": len({a.ticket.session_key for a in runs.active.values()})}
