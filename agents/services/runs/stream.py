"""One run's step events: numbered, published to its session's topic, and kept as a bounded
replay, so a follower that joins a live run (``GET /api/runs/<id>/events``) gets it from its
start with no gap and no duplicate.

The replay keeps what a late follower needs, not every event: the ``agent-start`` event, the
text so far merged into one ``agent-stream`` per stretch between tool steps (``replay:
true``, ``seq`` of the last delta it holds), the tool steps, and the terminal event once
sent. It grows with the text's length, not with the number of events (a 100k-token answer
is ~0.7 MB of text here, where its events were ~30 MB of payloads).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agents.routing import room_of_session_key
from agents.runtime.text import TextBuffer
from gateway.delivery import publish as events
from gateway.protocol.dialects.base import now_ms
from gateway.protocol.events import AGENT_TERMINAL

Observer = Callable[[dict[str, Any]], Awaitable[None]]


def session_topic(key: str) -> str:
    """The event topic of a session: run events and ``session.message`` go there. A room
    session's topic is its room's (``room:<roomId>``): the room's subscribers see every
    member agent's runs, and subscribing to one room session subscribes to its room."""
    room = room_of_session_key(key)
    return room_topic(room) if room else f"session:{key}"


def room_topic(room_id: str) -> str:
    """The event topic of a room: ``room.message``, ``room.member``, its agents' runs."""
    return f"room:{room_id}"


class _Text:
    """A stretch of streamed text between tool steps."""

    __slots__ = ("buffer", "name", "seq", "timestamp")

    def __init__(self) -> None:
        self.buffer = TextBuffer()
        self.seq = 0
        self.timestamp = 0
        self.name: str | None = None


class RunStream:
    """Numbers and publishes one run's step events; keeps its text and replay."""

    def __init__(self, ticket, observer: Observer | None = None) -> None:
        self.ticket = ticket
        self.observer = observer
        self.topic = session_topic(ticket.session_key)
        room = room_of_session_key(ticket.session_key)
        #: Room runs' events say their room, so a client can show them side by side.
        self._tags = {"roomId": room} if room else {}
        self.seq = 0
        self._start: dict[str, Any] | None = None
        #: text stretches and tool steps, in order
        self._steps: list[_Text | dict[str, Any]] = []
        self._terminal: dict[str, Any] | None = None

    async def emit(self, step: dict[str, Any]) -> None:
        self.seq += 1
        payload = {
            "runId": self.ticket.run_id,
            "sessionKey": self.ticket.session_key,
            "agentId": self.ticket.agent_id,
            **self._tags,
            "seq": self.seq,
            "timestamp": now_ms(),
            **step,
        }
        self._keep(payload)
        await events.publish_topic(self.topic, "agent", payload, key=self.ticket.run_id)
        if self.observer is not None:
            await self.observer(payload)

    def text(self) -> str:
        """Everything the model has streamed so far."""
        return "".join(str(s.buffer) for s in self._steps if isinstance(s, _Text))

    def _keep(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "agent-stream":
            if not payload.get("text"):
                return  # tool-call chunks: the tool steps say it
            last = self._steps[-1] if self._steps else None
            if not isinstance(last, _Text):
                last = _Text()
                self._steps.append(last)
            last.buffer.append(payload["text"])
            last.seq, last.timestamp = payload["seq"], payload["timestamp"]
            last.name = (payload.get("chunk") or {}).get("name")
        elif kind == "agent-start":
            self._start = payload
        elif kind in AGENT_TERMINAL:
            self._terminal = payload
        else:
            self._steps.append(payload)

    def snapshot(self) -> dict[str, Any]:
        """``{seq, events}``: the run up to event ``seq`` as payloads to replay in order
        (every event up to ``seq`` is in them, merged; none after)."""
        replay: list[dict[str, Any]] = [self._start] if self._start else []
        for step in self._steps:
            replay.append(self._replayed(step) if isinstance(step, _Text) else step)
        if self._terminal:
            replay.append(self._terminal)
        return {"seq": self.seq, "events": replay}

    def _replayed(self, stretch: _Text) -> dict[str, Any]:
        text = str(stretch.buffer)
        data = {"chunk": {"content": text}}
        return {
            "runId": self.ticket.run_id,
            "sessionKey": self.ticket.session_key,
            "agentId": self.ticket.agent_id,
            **self._tags,
            "seq": stretch.seq,
            "timestamp": stretch.timestamp,
            "type": "agent-stream",
            "chunk": {"event": "on_chat_model_stream", "name": stretch.name, "data": data},
            "text": text,
            "replay": True,
        }
