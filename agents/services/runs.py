"""The one run service: every source (WebSocket, CLI, REST, routines, webhooks, rooms)
starts agent runs here.

A run: route → session → persist the user message → wait for the session's turn (one run
per session at a time; later requests queue) → stream the agent → persist the answer and
the final status → exactly one terminal event (``agent-complete`` | ``agent-error`` |
``agent-cancelled``), even on cancel, timeout, crash or shutdown.

Runs execute as asyncio tasks in the process that accepted them (``Run.owner`` is that
process's hub id). Cancelling a run owned by another process goes through its hub.
Idempotency keys are unique per source in the database, so a retry never starts a second
run, across reconnects and across gateway processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import secrets
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents import selectors
from agents.models import (
    TERMINAL_STATUSES,
    Message,
    MessageRole,
    Run,
    RunSource,
    RunStatus,
    Session,
)
from agents.routing import Route, default_agent, match_binding, session_key
from agents.services import sessions as session_service
from agents.services.run_stream import RunStream, session_topic
from gateway.delivery import publish as events
from gateway.delivery.extensions import Extension
from gateway.delivery.hub import Hub, get_hub
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.state import outage

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = float(os.environ.get("WINGMAN_RUN_TIMEOUT", "600"))
HISTORY_LIMIT = int(os.environ.get("WINGMAN_HISTORY_LIMIT", "50"))
_POLL_SECONDS = 0.05
_REMOTE_POLL_SECONDS = 0.2
_CONTROL_CANCEL = "run.cancel"
_CONTROL_REPLAY = "run.replay"
#: How long a follower waits for another process's replay of the run it owns.
REPLAY_WAIT_SECONDS = 2.0
#: On shutdown, cancelled runs get this long to settle (within gateway/server/serve.py's drain).
SHUTDOWN_RUNS_SECONDS = 2.0


@dataclass
class RunRequest:
    """What a caller asks for; see ``design/protocol.md`` ``agent`` params."""

    message: str
    source: str = RunSource.WS
    agent_id: str | None = None
    session_key: str | None = None
    route: Route | None = None
    idempotency_key: str | None = None
    queue: bool = True
    timeout: float | None = None
    extra_system_prompt: str | None = None
    #: The connection that asked (it is not sent its own message as ``session.message``).
    requester: str | None = None
    #: Also called with every step event (in-process callers such as ``wingman agent --local``).
    observer: Callable[[dict[str, Any]], Awaitable[None]] | None = None


@dataclass
class RunTicket:
    """The accepted run (or the existing one, for a retried idempotency key)."""

    run_id: str
    session_key: str
    agent_id: str
    status: str
    accepted_at: int
    position: int = 0
    duplicate: bool = False
    final: dict[str, Any] | None = None
    _spec: dict[str, Any] = field(default_factory=dict, repr=False)

    def ack(self) -> dict[str, Any]:
        """The first ``res`` of ``agent``."""
        ack = {
            "runId": self.run_id,
            "status": "accepted",
            "acceptedAt": self.accepted_at,
            "sessionKey": self.session_key,
            "agentId": self.agent_id,
        }
        if self.position:
            ack["queuePosition"] = self.position
        if self.duplicate:
            ack["duplicate"] = True
        return ack


@dataclass
class _Active:
    task: asyncio.Task
    done: asyncio.Event
    session_key: str
    stream: RunStream
    #: Called with the final result before the run counts as ended (``agent``'s second
    #: reply, :func:`run_follow`): shutdown waits for the runs, so these go out before it.
    answer: list[Callable[[dict[str, Any]], Awaitable[None]]] = field(default_factory=list)
    answered: bool = False


# submit ------------------------------------------------------------------------------------
def _existing(source: str, key: str | None) -> Run | None:
    if not key:
        return None
    return Run.objects.select_related("session").filter(source=source, idempotency_key=key).first()


def _ticket_for(run: Run, *, duplicate: bool) -> RunTicket:
    return RunTicket(
        run_id=run.id,
        session_key=run.session.key,
        agent_id=run.session.agent_id,
        status=run.status,
        accepted_at=int(run.created_at.timestamp() * 1000),
        duplicate=duplicate,
        final=final_result(run) if run.finished else None,
    )


def _resolve_session(req: RunRequest) -> Session:
    if req.session_key:
        owner = session_service.check_key_agent(req.session_key, req.agent_id)
        existing = Session.objects.select_related("agent").filter(key=req.session_key).first()
        if existing is not None:
            return existing
        agent = session_service.agent_get(owner)
        return session_service.session_for(agent=agent, key=req.session_key, route=req.route)
    agent = session_service.agent_get(req.agent_id) if req.agent_id else _route_agent(req.route)
    return session_service.session_for(
        agent=agent, key=session_key(agent.id, req.route), route=req.route
    )


def _route_agent(route: Route | None):
    from agents.models import Agent, Binding

    if route is not None and route.channel:
        binding = match_binding(
            Binding.objects.filter(agent__enabled=True).select_related("agent"), route
        )
        if binding is not None:
            return binding.agent
    agent = default_agent(Agent.objects.filter(enabled=True))
    if agent is None:
        raise GatewayError(ErrorCode.NOT_FOUND, "no agent is configured")
    return agent


def _busy(session: Session) -> int:
    return Run.objects.filter(
        session=session, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).count()


def _prepare(req: RunRequest, owner: str) -> RunTicket:
    """Validate, route, and persist the run and the user message (one transaction)."""
    existing = _existing(req.source, req.idempotency_key)
    if existing is not None:
        return _ticket_for(existing, duplicate=True)
    session = _resolve_session(req)
    ahead = _busy(session)
    if ahead and not req.queue:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"session {session.key} is busy ({ahead} run(s) ahead) and queueing was refused",
            retryable=True,
        )
    try:
        with transaction.atomic():
            run = Run.objects.create(
                session=session,
                source=req.source,
                prompt=req.message,
                idempotency_key=req.idempotency_key or None,
                owner=owner,
            )
            user_message = _append_message(session, MessageRole.USER, req.message, run)
    except IntegrityError:
        existing = _existing(req.source, req.idempotency_key)
        if existing is None:
            raise
        return _ticket_for(existing, duplicate=True)
    agent = session.agent
    ticket = _ticket_for(run, duplicate=False)
    ticket.position = ahead
    ticket._spec = {
        "model": agent.model,
        "system_prompt": agent.system_prompt,
        "tools": list(agent.tools or []),
        "session_id": session.pk,
        "position": user_message.position,
        "working_folder": str(session_service.working_folder(session)),
    }
    return ticket


def _append_message(session: Session, role: str, content: str, run: Run | None) -> Message:
    """Add a message at the end of the session (called inside a transaction)."""
    locked = Session.objects.select_for_update().get(pk=session.pk)
    message = Message.objects.create(
        session=locked, role=role, content=content, run=run, position=locked.message_count
    )
    Session.objects.filter(pk=session.pk).update(
        message_count=F("message_count") + 1,
        last_preview=content[:200],
        updated_at=timezone.now(),
    )
    return message


async def run_submit(req: RunRequest) -> RunTicket:
    """Accept a run (or find the one a retried idempotency key already started).

    Nothing executes until :func:`run_launch`, so callers can send their ack first.
    """
    if not req.message or not req.message.strip():
        raise GatewayError(ErrorCode.INVALID_REQUEST, "message must not be empty")
    hub = await get_hub()
    return await database_sync_to_async(_prepare)(req, hub.id)


async def run_launch(ticket: RunTicket, req: RunRequest) -> None:
    """Start executing an accepted run in this process (no-op for a duplicate)."""
    if ticket.duplicate:
        return
    hub = await get_hub()
    active = _registry(hub)
    done = asyncio.Event()
    stream = RunStream(ticket, req.observer)
    # A fresh context: the run outlives whoever asked, and a request's context ties
    # thread-sensitive database calls to an executor that ends with that request (a REST
    # call through async_to_sync, a routine's task).
    task = hub.loop.create_task(
        _execute(ticket, req, stream), name=f"run-{ticket.run_id}", context=contextvars.Context()
    )
    active[ticket.run_id] = _Active(task, done, ticket.session_key, stream)

    def ended(_t: asyncio.Task | None = None) -> None:
        done.set()
        if active.pop(ticket.run_id, None) is not None:
            hub.collector.ended()  # the run is cyclic garbage now (delivery/memory.py)

    def on_done(t: asyncio.Task) -> None:
        if not t.cancelled():
            ended()
            return
        # Cancelled before its first step: _execute never ran, so settle the run here.
        settle = hub.loop.create_task(
            _finish(ticket, stream, RunStatus.CANCELLED, "cancelled", None),
            context=contextvars.Context(),
        )
        settle.add_done_callback(ended)

    task.add_done_callback(on_done)
    if ticket.run_id in _early_cancels(hub):  # cancelled between accept and launch
        _early_cancels(hub).discard(ticket.run_id)
        task.cancel()
    if req.requester is None:
        return
    message = {"role": MessageRole.USER.value, "content": req.message, "runId": ticket.run_id}
    await events.publish_topic(
        session_topic(ticket.session_key),
        "session.message",
        {"sessionKey": ticket.session_key, "message": message},
        exclude=req.requester,
    )


class _LocalRuns:
    """The runs executing in this process (per event loop), and cancels that arrived
    between a run's accept and its launch."""

    def __init__(self) -> None:
        self.active: dict[str, _Active] = {}
        self.cancelled_early: set[str] = set()


_local_runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LocalRuns] = (
    weakref.WeakKeyDictionary()
)


def _local() -> _LocalRuns:
    loop = asyncio.get_running_loop()
    runs = _local_runs.get(loop)
    if runs is None:
        runs = _local_runs[loop] = _LocalRuns()
    return runs


def _registry(hub: Hub | None = None) -> dict[str, _Active]:
    return _local().active


# execute -----------------------------------------------------------------------------------
async def _execute(ticket: RunTicket, req: RunRequest, stream: RunStream) -> None:
    timeout = req.timeout or DEFAULT_TIMEOUT_SECONDS
    status, error, code = RunStatus.OK, "", None
    holding = False
    try:
        async with asyncio.timeout(timeout):
            holding = await _wait_turn(ticket, timeout)
            await database_sync_to_async(_mark_running)(ticket.run_id)
            await stream.emit(
                {"type": "agent-start", "agent": ticket.agent_id, "prompt": req.message}
            )
            await _turn(ticket, req, stream)
    except asyncio.CancelledError:
        status, error = RunStatus.CANCELLED, "cancelled"
    except TimeoutError:
        status, code = RunStatus.TIMEOUT, ErrorCode.AGENT_TIMEOUT
        error = f"the run timed out after {timeout:g} s"
    except Exception as exc:
        status, error = RunStatus.ERROR, _describe(exc)
        if not _expected(exc):
            logger.exception("run %s failed", ticket.run_id)
    finally:
        # Persist and publish the end first, then let the next queued run go: it must see
        # this answer in its history and start after this run's terminal event.
        try:
            await asyncio.shield(_finish(ticket, stream, status, error, code))
        finally:
            if holding:
                await _release_turn(ticket)


async def _turn(ticket: RunTicket, req: RunRequest, stream: RunStream) -> str:
    from pathlib import Path

    from agents.runtime.runner import AgentSpec, run_turn

    spec = ticket._spec
    history = await database_sync_to_async(selectors.model_history)(
        spec["session_id"], before=spec["position"], limit=HISTORY_LIMIT, run_id=ticket.run_id
    )
    return await run_turn(
        AgentSpec(
            agent_id=ticket.agent_id,
            model=spec["model"],
            system_prompt=spec["system_prompt"],
            tools=spec["tools"],
        ),
        history=history,
        prompt=req.message,
        working_folder=Path(spec["working_folder"]),
        emit=stream.emit,
        extra_system_prompt=req.extra_system_prompt,
    )


def _lock_key(session_key_: str) -> str:
    return f"gw:runlock:{session_key_}"


def _try_turn(run_id: str, session_key_: str, ttl: float) -> bool:
    """Take the session's run lock if this run is the oldest one waiting."""
    oldest = (
        Run.objects.filter(session__key=session_key_, status=RunStatus.QUEUED)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    if oldest != run_id:
        return False
    return cache.add(_lock_key(session_key_), run_id, timeout=int(ttl) + 30)


async def _wait_turn(ticket: RunTicket, lock_seconds: float) -> bool:
    """Wait (cancellable; the caller bounds it by the run timeout) for this run's turn."""
    try_turn = database_sync_to_async(_try_turn)
    # Polls shared state: the run ahead may belong to another process.
    while not await try_turn(ticket.run_id, ticket.session_key, lock_seconds):  # noqa: ASYNC110
        await asyncio.sleep(_POLL_SECONDS)
    return True


async def _release_turn(ticket: RunTicket) -> None:
    key = _lock_key(ticket.session_key)
    if await cache.aget(key) == ticket.run_id:
        await cache.adelete(key)


def _mark_running(run_id: str) -> None:
    Run.objects.filter(pk=run_id).update(status=RunStatus.RUNNING, started_at=timezone.now())


def _describe(exc: Exception) -> str:
    from agents.runtime.providers import ModelError

    if isinstance(exc, (ModelError, GatewayError)):
        return str(exc)
    if outage.is_outage(exc):  # e.g. the session's run lock, in Redis
        return outage.unavailable(exc).message
    return f"{type(exc).__name__}: {exc}"


def _expected(exc: Exception) -> bool:
    """Not a bug (no traceback): the model's own errors, and Redis being unreachable."""
    from agents.runtime.offline import OfflineModelError
    from agents.runtime.providers import ModelError

    return outage.is_outage(exc) or isinstance(exc, (ModelError, OfflineModelError))


def _persist_final(run_id: str, status: str, text: str, error: str) -> Run:
    with transaction.atomic():
        run = Run.objects.select_related("session").get(pk=run_id)
        run.status, run.result, run.error = status, text, error
        run.ended_at = timezone.now()
        run.save(update_fields=["status", "result", "error", "ended_at"])
        if text:
            _append_message(run.session, MessageRole.ASSISTANT, text, run)
    return run


async def _finish(ticket: RunTicket, stream: RunStream, status: str, error: str, code) -> None:
    """Persist the final state, then publish the one terminal event."""
    text = stream.text()
    try:
        run = await database_sync_to_async(_persist_final)(ticket.run_id, status, text, error)
        ticket.final = final_result(run)
    except Exception:
        logger.exception("could not persist the end of run %s", ticket.run_id)
    step = selectors.terminal_step(status=status, text=text, error=error, code=code)
    try:
        await stream.emit(step)
    except Exception:
        logger.exception("could not publish the end of run %s", ticket.run_id)
    await _answer(ticket)


async def _answer(ticket: RunTicket) -> None:
    """Send the final result to the run's followers (after its terminal event)."""
    active = _registry(await get_hub()).get(ticket.run_id)
    if active is None:
        return
    active.answered = True
    if ticket.final is None:
        return
    for send in active.answer:
        try:
            await send(ticket.final)
        except Exception:
            logger.warning("could not send the final result of run %s", ticket.run_id)


def final_result(run: Run) -> dict[str, Any]:
    """The second ``res`` of ``agent``: ``{runId, status, summary, result}``."""
    status = {RunStatus.OK: "ok", RunStatus.CANCELLED: "cancelled"}.get(run.status, "error")
    out: dict[str, Any] = {
        "runId": run.id,
        "status": status,
        "summary": "completed" if status == "ok" else run.error or status,
        "result": selectors.result_payload(run.result),
    }
    if run.status == RunStatus.TIMEOUT:
        out["error"] = {"code": str(ErrorCode.AGENT_TIMEOUT), "message": run.error}
    elif status == "error":
        out["error"] = {"code": "AGENT_ERROR", "message": run.error}
    return out


# follow / wait / cancel --------------------------------------------------------------------
async def run_follow(
    ticket: RunTicket, req: RunRequest, send: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """Launch an accepted run, then ``send`` its final result once it has ended.

    A run executing in this process calls ``send`` itself, right after its terminal event
    and before it counts as ended: shutdown waits for the runs, so even a run cancelled by
    SIGTERM answers its requester before the ``shutdown`` event and the close.
    """
    if ticket.final is None:
        await run_launch(ticket, req)
        active = _registry(await get_hub()).get(ticket.run_id)
        if active is not None and not active.answered:
            active.answer.append(send)
            return
        run = await run_wait(ticket.run_id, 86_400)
        ticket.final = final_result(run) if run else None
    if ticket.final is not None:
        await send(ticket.final)


def _load(run_id: str) -> Run | None:
    return Run.objects.select_related("session").filter(pk=run_id).first()


async def run_get(run_id: str) -> Run:
    run = await database_sync_to_async(_load)(run_id)
    if run is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no run {run_id!r}")
    return run


async def run_wait(run_id: str, wait_seconds: float) -> Run | None:
    """The finished run, or None if it is still going after ``wait_seconds``."""
    run = await run_get(run_id)
    if run.finished:
        return run
    hub = await get_hub()
    active = _registry(hub).get(run_id)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_seconds):
            if active is not None:
                await active.done.wait()
            else:  # owned by another process: poll the database
                while not (await run_get(run_id)).finished:  # noqa: ASYNC110
                    await asyncio.sleep(_REMOTE_POLL_SECONDS)
    run = await run_get(run_id)
    return run if run.finished else None


async def run_cancel(run_id: str) -> bool:
    """Cancel a queued or running run wherever it runs. False if it had already ended."""
    run = await run_get(run_id)
    if run.finished:
        return False
    hub = await get_hub()
    active = _registry(hub).get(run_id)
    if active is not None:
        active.task.cancel()
        return True
    if await hub.seat.send_control(run.owner, _CONTROL_CANCEL, {"runId": run_id}):
        return True
    # The owner is gone (crashed): settle the run here so it does not hang forever.
    await database_sync_to_async(_persist_final)(run_id, RunStatus.CANCELLED, "", "cancelled")
    return True


async def _on_cancel_control(data: dict[str, Any]) -> None:
    hub = await get_hub()
    run_id = str(data.get("runId"))
    active = _registry(hub).get(run_id)
    if active is not None:
        active.task.cancel()
    else:  # accepted here but not launched yet: run_launch cancels it at once
        _early_cancels(hub).add(run_id)


async def run_replay(run: Run) -> dict[str, Any] | None:
    """The run so far (:meth:`RunStream.snapshot`: ``{seq, events}``) from the process that
    runs it, this one or another (through its hub); None when no process has it: not
    launched yet, already ended, or its owner did not answer within REPLAY_WAIT_SECONDS."""
    hub = await get_hub()
    active = _registry(hub).get(run.id)
    if active is not None:
        return active.stream.snapshot()
    if run.owner == hub.id or not hub.seat.shared:
        return None
    reply_topic = f"run-replay:{secrets.token_hex(8)}"
    listener = await hub.listen(reply_topic)
    try:
        data = {"runId": run.id, "replyTo": reply_topic}
        if not await hub.seat.send_control(run.owner, _CONTROL_REPLAY, data):
            return None
        async with asyncio.timeout(REPLAY_WAIT_SECONDS):
            reply = json.loads((await anext(listener)).payload_json)
        return reply or None
    except TimeoutError:
        logger.warning("no replay of run %s from its process %s", run.id, run.owner)
        return None
    finally:
        await hub.unlisten(listener)


async def _on_replay_control(data: dict[str, Any]) -> None:
    hub = await get_hub()
    active = _registry(hub).get(str(data.get("runId")))
    snapshot = active.stream.snapshot() if active is not None else {}
    await events.publish_topic(str(data["replyTo"]), "run.replay", snapshot)


def _early_cancels(hub: Hub | None = None) -> set[str]:
    return _local().cancelled_early


async def _cancel_all() -> None:
    """Shutdown: cancel this process's runs and let them persist, publish their end and
    answer their requesters (bounded, so the drain still tells every client in time)."""
    hub = await get_hub()
    active = list(_registry(hub).values())
    for item in active:
        item.task.cancel()
    if active:
        # ``done`` (not the task): a run cancelled before its first step settles in a
        # second task (run_launch's on_done).
        ended = [asyncio.ensure_future(a.done.wait()) for a in active]
        _, late = await asyncio.wait(ended, timeout=SHUTDOWN_RUNS_SECONDS)
        for waiter in late:
            waiter.cancel()


def active_session_count() -> int:
    """Sessions with a queued or running run (for /health's activeSessions)."""
    return (
        Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .values("session_id")
        .distinct()
        .count()
    )


def runs_recover(alive) -> int:
    """At start: settle runs whose owning process is gone (``alive(owner)`` is False)."""
    stale = [
        run_id
        for run_id, owner in Run.objects.filter(
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ).values_list("id", "owner")
        if not alive(owner)
    ]
    for run_id in stale:
        _persist_final(
            run_id, RunStatus.ERROR, "", "interrupted: the gateway stopped before the run ended"
        )
    return len(stale)


def local_stats() -> dict[str, int]:
    """``activeSessions`` for ``/health``: sessions with a run executing in this process."""
    try:
        runs = _local()
    except RuntimeError:  # no event loop: nothing runs here
        return {"activeSessions": 0}
    return {"activeSessions": len({a.session_key for a in runs.active.values()})}


EXTENSION = Extension(
    name="agents",
    control={_CONTROL_CANCEL: _on_cancel_control, _CONTROL_REPLAY: _on_replay_control},
    on_shutdown=_cancel_all,
    stats=local_stats,
    stored=selectors.stored_counts,
)


__all__ = [
    "TERMINAL_STATUSES",
    "RunRequest",
    "RunTicket",
    "run_cancel",
    "run_follow",
    "run_launch",
    "run_replay",
    "run_submit",
    "run_wait",
]
