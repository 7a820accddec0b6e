"""A run's events as Server-Sent Events (``GET /api/runs/<id>/events``).

A follower gets the whole run whenever it connects: the run so far (the run service's
replay: ``agent-start``, the text so far, the tool steps), then the live events after it,
with no gap and no duplicate (``seq``), up to the one terminal event; a finished run sends
its terminal event. A follower that stops reading is cut off like a slow WebSocket: past
``maxBufferedBytes`` unread its stream ends with an ``error`` event (``SLOW_CONSUMER``; it
may reconnect and starts over from the run's start) and its connection is dropped if it still
reads nothing 5 s later.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from django.conf import settings

from agents import selectors
from agents.models import Run, RunStatus
from agents.services import runs
from agents.services.runs import session_topic
from gateway.api.sse import KEEPALIVE, sse_frame
from gateway.delivery.hub import TopicListener, get_hub
from gateway.protocol.events import AGENT_TERMINAL
from gateway.ws.writer import SLOW_CONSUMER_ABORT_SECONDS

logger = logging.getLogger(__name__)

#: Seconds of silence before a keepalive comment is sent (and the run's end is looked up in
#: the database, in case no process will publish it: its owner is gone).
KEEPALIVE_SECONDS = 15.0
SLOW_CONSUMER = "SLOW_CONSUMER"


class Socket(Protocol):
    """The response's socket, when the server tells (gateway/ws/writer.py SOCKET_SCOPE_KEY)."""

    def buffered_bytes(self) -> int: ...

    def abort(self) -> None: ...


def _frame(payload: dict[str, Any]) -> str:
    return sse_frame(
        payload["type"], json.dumps(payload, separators=(",", ":")), payload.get("seq")
    )


class _Cutoff:
    """Ends a follower that fell too far behind, like a slow WebSocket (close 4008)."""

    def __init__(self, run_id: str, socket: Socket | None, limit: int) -> None:
        self.run_id = run_id
        self.socket = socket
        self.limit = limit
        self.done = False

    def unread(self, listener: TopicListener) -> int:
        """Bytes written but not read yet (the socket) plus those waiting to be written."""
        written = self.socket.buffered_bytes() if self.socket is not None else 0
        return written + listener.queued_bytes

    def cut(self) -> None:
        """Log it, and drop the connection if the client still has not read what was
        written when the grace is over (the stream itself ends with :meth:`frame`)."""
        if self.done:
            return
        self.done = True
        logger.warning("ending the slow event stream of run %s (fell behind)", self.run_id)
        socket = self.socket
        if socket is None:
            return

        def abort() -> None:
            if socket.buffered_bytes() > 0:
                socket.abort()

        asyncio.get_running_loop().call_later(SLOW_CONSUMER_ABORT_SECONDS, abort)

    def frame(self) -> str:
        error = {
            "detail": f"this follower fell more than {self.limit} bytes behind the run; "
            "reconnect to follow it again (from the run's start)",
            "code": SLOW_CONSUMER,
            "runId": self.run_id,
        }
        return sse_frame("error", json.dumps(error, separators=(",", ":")))


async def run_events(run: Run, socket: Socket | None = None) -> AsyncIterator[str]:
    """See the module docstring. The listener is subscribed before the run's state is read,
    so nothing published meanwhile is missed; it is unsubscribed however the stream ends."""
    hub = await get_hub()
    cutoff = _Cutoff(run.id, socket, settings.WINGMAN.policy.max_buffered_bytes)
    topic = session_topic(run.session.key)
    listener = await hub.listen(topic, key=run.id, max_bytes=cutoff.limit)
    listener.on_overflow = cutoff.cut
    try:
        current = await runs.run_get(run.id)
        if current.finished:
            yield _frame(selectors.run_terminal_event(current))
            return
        replay, after = await _replay(current)
        for payload in replay:
            yield _frame(payload)
            if payload["type"] in AGENT_TERMINAL:
                return
        async for text in _live(listener, after, cutoff):
            yield text
    finally:
        await hub.unlisten(listener)


async def _replay(run: Run) -> tuple[list[dict[str, Any]], int]:
    """The run so far, and the ``seq`` the live events continue after."""
    snapshot = await runs.run_replay(run)
    if snapshot:
        return snapshot["events"], snapshot["seq"]
    if run.status != RunStatus.RUNNING:
        return [], 0  # queued: its events, agent-start first, are all still to come
    # Running in a process that could not tell what it streamed (it did not answer): the
    # start event from the database; the text streamed before now is not known here.
    return [selectors.run_start_event(run)], 1


async def _live(listener: TopicListener, after: int, cutoff: _Cutoff) -> AsyncIterator[str]:
    """The run's events after ``after``, up to its terminal one."""
    while True:
        try:
            event = await asyncio.wait_for(anext(listener), KEEPALIVE_SECONDS)
        except TimeoutError:
            current = await runs.run_get(cutoff.run_id)
            if current.finished:  # ended where no event is published (its process is gone)
                yield _frame(selectors.run_terminal_event(current))
                return
            yield KEEPALIVE
            continue
        except StopAsyncIteration:  # the listener overflowed
            event = None
        if event is None or cutoff.unread(listener) > cutoff.limit:
            cutoff.cut()
            yield cutoff.frame()
            return
        payload = json.loads(event.payload_json)
        # No seq: a terminal event published by a process that did not execute the run
        # (its executor died, or no worker had claimed it), which cannot know the last
        # seq. It is never part of the replay.
        if payload.get("seq") is not None and payload["seq"] <= after:
            continue  # already in the replay
        yield sse_frame(payload["type"], event.payload_json, payload.get("seq"))
        if payload["type"] in AGENT_TERMINAL:
            return
