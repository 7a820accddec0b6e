"""Broadcasting to a room (seed 001 use case 3, seed 000 broadcast groups).

A broadcast is recorded in the room's history and sent as ``room.message`` to the room's
topic (every live member and subscriber except the sending connection: sender
exclusion). Then every member agent runs once on it, each in its own durable session
``agent:<agentId>:room:<roomId>``, through the one run entry point
(``agents.services.runs.run_start``):

- ``parallel``: all runs start at once and stream side by side;
- ``sequential``: one after another in the room's agent order, each prompt carrying the
  answers before it (planner → implementor → reviewer).

The runs' ``agent`` events go to the room's topic tagged ``roomId``/``agentId``/``runId``.
When a run ends its answer is recorded and relayed as ``room.message`` from the agent; an
agent's message never starts a run (no loops). The relaying and the sequential chain run as
tasks on this process's loop: if the process dies mid-chain, the later agents do not run.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from agents.models import RunSource
from agents.routing import room_session_key
from agents.services.runs import RunRequest, RunTicket, room_topic, run_start, run_wait
from agents.services.runs.start import this_seat
from gateway.delivery import publish
from gateway.protocol import events
from gateway.protocol.dialects.base import dumps
from gateway.protocol.errors import ErrorCode, GatewayError
from rooms import selectors
from rooms.models import Room, SenderKind, Strategy
from rooms.runtime import recent
from rooms.services.history import Entry, writer

logger = logging.getLogger(__name__)

#: How long the relay waits for one run to end (a run ends by its own timeout first).
RUN_WAIT_SECONDS = 86_400.0
#: Room tasks (relays, sequential chains) referenced until they end.
_tasks: set[asyncio.Task] = set()


@dataclass(frozen=True)
class Sender:
    """Who broadcasts: ``kind`` user | client | node | agent; ``conn_id`` is the sending
    connection, which does not get its own message back."""

    kind: str
    id: str
    name: str = ""
    conn_id: str | None = None


def _content_of(message: Any) -> str:
    """The text agents see: a string as is, ``{"content": str}``'s content, else JSON."""
    if isinstance(message, str):
        return message
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return message["content"]
    return dumps(message)


async def _load(room_id: str) -> tuple[Room, list[str]]:
    """The room (by id or name) and its agents, from ``recent`` (no query) when it can;
    ``NOT_FOUND`` for no such room."""
    try:
        return await recent.lookup(room_id, _rooms_fresh)
    except LookupError:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no room {room_id!r}") from None


@database_sync_to_async
def _rooms_fresh(keys: list[str]) -> dict[str, tuple[Room, list[str]]]:
    return selectors.rooms_with_agent_ids(keys=keys)


async def _post(room: Room, sender: Sender, content: str, payload: Any, bid: str, **kw) -> dict:
    """Send ``room.message`` (all but the sending connection) and store the history entry
    (returns once it is stored; ``UNAVAILABLE`` when it could not be)."""
    entry = Entry(
        room.id,
        bid,
        sender.kind,
        sender.id,
        sender.name,
        content,
        payload,
        kw.get("run_id", ""),
        kw.get("status", ""),
        timezone.now(),
    )
    written = writer().add(entry)
    data = selectors.message_data(entry)
    await publish.publish_topic(
        room_topic(room.id), events.ROOM_MESSAGE, data, exclude=sender.conn_id
    )
    try:
        await written
    except Exception as exc:
        raise GatewayError(ErrorCode.UNAVAILABLE, f"room history not stored: {exc}") from exc
    return data


async def room_broadcast(
    *,
    room_id: str,
    message: Any,
    sender: Sender | None = None,
    sender_conn_id: str | None = None,
    strategy: str | None = None,
    on_run: Callable[[RunTicket], None] | None = None,
    hold: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Broadcast ``message`` (a string, ``{"content": ...}``, or any JSON a node sends) to a
    room given by id or name; see the module docstring. ``strategy`` overrides the room's
    for this broadcast; ``on_run`` is called with each run's ticket as it starts (e.g. to
    bind the run to the caller's request); with ``hold``, the runs it starts are accepted
    now but start only once ``hold`` is set (a caller sets it when its reply with the run
    ids is out, so no run event precedes it; on an error it is set here). ``sender`` says
    who; a bare ``sender_conn_id``
    is a client connection. Returns ``{roomId, broadcastId, strategy,
    runIds:[runId], runs:[{agentId, runId, sessionKey}], pending:[agentId]}``
    (``pending``: a sequential room's later agents, started as their turn comes: their run
    ids come with their ``agent`` events and answers). ``NOT_FOUND`` for no such room;
    ``INVALID_REQUEST`` for an empty message or an unknown strategy."""
    if sender is None:
        who = sender_conn_id or "anonymous"
        sender = Sender(kind=SenderKind.CLIENT, id=who, name=who, conn_id=sender_conn_id)
    content = _content_of(message)
    if not content.strip():
        raise GatewayError(ErrorCode.INVALID_REQUEST, "message must not be empty")
    if strategy is not None and strategy not in Strategy.values:
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"unknown strategy {strategy!r}")
    room, agent_ids = await _load(room_id)
    bid = os.urandom(16).hex()  # (uuid4().hex: the same 32 hex digits, 4x the CPU)
    payload = None if isinstance(message, str) else message
    await _post(room, sender, content, payload, bid)
    out: dict[str, Any] = {
        "roomId": room.id,
        "broadcastId": bid,
        "strategy": strategy or room.strategy,
        "runIds": [],
        "runs": [],
        "pending": [],
    }
    if sender.kind == SenderKind.AGENT or not agent_ids:
        return out  # an agent's message never starts a run
    try:
        if out["strategy"] == Strategy.PARALLEL:
            for agent_id in agent_ids:
                ticket = await _start(room, agent_id, content, on_run, hold)
                out["runs"].append(_run_data(ticket))
                await _spawn(_relay(room, bid, ticket))
        else:
            first = await _start(room, agent_ids[0], content, on_run, hold)
            out["runs"].append(_run_data(first))
            out["pending"] = agent_ids[1:]
            await _spawn(_chain(room, bid, content, first, agent_ids[1:], on_run))
    except BaseException:
        if hold is not None:
            hold.set()  # the runs accepted so far go ahead
        raise
    out["runIds"] = [r["runId"] for r in out["runs"]]
    return out


def _run_data(ticket: RunTicket) -> dict[str, str]:
    return {"agentId": ticket.agent_id, "runId": ticket.run_id, "sessionKey": ticket.session_key}


async def _start(room: Room, agent_id: str, prompt: str, on_run, hold=None) -> RunTicket:
    request = RunRequest(
        message=prompt,
        source=RunSource.ROOM,
        agent_id=agent_id,
        session_key=room_session_key(agent_id, room.id),
    )
    ticket = await (run_start(request=request) if hold is None else _start_held(request, hold))
    if on_run is not None:
        on_run(ticket)
    return ticket


async def _start_held(request: RunRequest, hold: asyncio.Event) -> RunTicket:
    """``run_start`` whose run, once accepted, waits for ``hold`` before it starts."""
    accepted: asyncio.Future[RunTicket] = asyncio.get_running_loop().create_future()

    async def held(ticket: RunTicket) -> None:
        accepted.set_result(ticket)
        await hold.wait()

    request.before_start = held
    starting = asyncio.ensure_future(run_start(request=request))
    _tasks.add(starting)
    starting.add_done_callback(_done)
    await asyncio.wait({accepted, starting}, return_when=asyncio.FIRST_COMPLETED)
    return accepted.result() if accepted.done() else starting.result()


async def _spawn(coro) -> None:
    seat = await this_seat()
    task = seat.loop.create_task(coro, context=contextvars.Context())
    _tasks.add(task)
    task.add_done_callback(_done)


def _done(task: asyncio.Task) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("room task failed", exc_info=task.exception())


async def _relay(room: Room, bid: str, ticket: RunTicket) -> dict[str, Any]:
    """Wait for a run's end; record its answer and relay it to the room (from the agent)."""
    run = await run_wait(ticket.run_id, RUN_WAIT_SECONDS)
    status = run.status if run is not None else "timeout"
    text = (run.result if run is not None and run.status == "ok" else None) or (
        run.error if run is not None and run.error else status
    )
    agent = Sender(kind=SenderKind.AGENT, id=ticket.agent_id, name=ticket.agent_id)
    return await _post(room, agent, text, None, bid, run_id=ticket.run_id, status=status)


def sequential_prompt(message: str, answers: list[dict[str, Any]]) -> str:
    """What a sequential room's later agent is asked: the message and the answers before."""
    parts = [message, "", "Answers so far in this room, in order:"]
    for answer in answers:
        parts.append(f"[{answer['from']['id']}] ({answer.get('status')}): {answer['content']}")
    return "\n".join(parts)


async def _chain(room, bid, message, first: RunTicket, rest: list[str], on_run) -> None:
    """A sequential room: each agent after the one before it ended, seeing its answer."""
    answers = [await _relay(room, bid, first)]
    for agent_id in rest:
        try:
            ticket = await _start(room, agent_id, sequential_prompt(message, answers), on_run)
        except GatewayError as exc:  # e.g. the agent was deleted meanwhile
            logger.warning("room %s: %s could not run: %s", room.id, agent_id, exc.message)
            continue
        answers.append(await _relay(room, bid, ticket))
