"""A run's events as Server-Sent Events (``GET /api/runs/<id>/events``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from agents import selectors
from agents.models import Run
from agents.services import runs
from agents.services.runs import session_topic
from gateway.api.sse import KEEPALIVE, sse_frame
from gateway.delivery.hub import get_hub
from gateway.protocol.events import AGENT_TERMINAL

#: Seconds of silence before a keepalive comment is sent.
KEEPALIVE_SECONDS = 15.0


async def run_events(run: Run) -> AsyncIterator[str]:
    """The run's ``agent`` events from now on, ending after its one terminal event.

    A run that has already ended yields its terminal event (rebuilt from the database) and
    ends. The listener is subscribed before the run's state is read, so a run that ends in
    between is not missed; it is unsubscribed however the stream ends (client gone too).
    """
    hub = await get_hub()
    listener = await hub.listen(session_topic(run.session.key))
    try:
        current = await runs.run_get(run.id)
        if current.finished:
            event = selectors.run_terminal_event(current)  # session is loaded with the run
            yield sse_frame(event["type"], json.dumps(event, separators=(",", ":")))
            return
        while True:
            try:
                event = await asyncio.wait_for(anext(listener), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield KEEPALIVE
                continue
            # The session's topic also carries session.message and the session's other runs.
            if event.name != "agent" or event.key != run.id:
                continue
            payload = json.loads(event.payload_json)
            yield sse_frame(payload["type"], event.payload_json, payload.get("seq"))
            if payload["type"] in AGENT_TERMINAL:
                return
    finally:
        await hub.unlisten(listener)
