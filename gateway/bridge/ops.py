"""What a bridge request does to a session, wherever the request landed: the process holding
the session runs these, for its own requests and for those other processes forward to it
(gateway/bridge/forward.py)."""

from __future__ import annotations

import json
from typing import Any

from gateway.bridge.sessions import BridgeSession, registry
from gateway.protocol.errors import CloseCode


async def do_send(
    session: BridgeSession, frames: list[str], *, ack: int = 0, close: bool = False
) -> dict[str, Any]:
    """Feed frames to the session's connection in order; the send's answer."""
    if ack:
        session.queue.ack(ack)
    accepted = await session.receive(frames)
    if close:
        await session.connection.close(CloseCode.NORMAL)
        registry().drop(session.id)
    return {"session": session.id, "accepted": accepted, "closed": session.queue.close_code}


class WaitingPoll:
    """A local long poll while it waits: the queue hands it the first new frame and it
    answers at once, from the fan-out, as a WebSocket frame is written then (not a task
    wake and a loop iteration later). Frames queued later go with the next poll."""

    def __init__(self, session: BridgeSession, after: int, respond, socket) -> None:
        self.session = session
        self.after = after
        self.respond = respond
        self.socket = socket
        self.answered = False

    async def deliver(self, fid: int, text: str) -> None:
        # only into an empty write buffer: the answer is then written without waiting
        if self.answered or self.socket is None or self.socket.buffered_bytes():
            return  # the poll's own task answers when it wakes
        self.answered = True
        await self.respond(answer(self.session, self.after))

    def wake(self) -> None:
        """The queue closed: the poll's task answers (it is woken with the queue's waiters)."""


async def do_poll(
    session: BridgeSession,
    *,
    cursor: int,
    after: int,
    seconds: float,
    streamed: bool = False,
    early: WaitingPoll | None = None,
) -> str | None:
    """Ack up to ``cursor``, wait (at most ``seconds``) for a frame after ``after`` and
    answer with the frames after it (JSON text). ``streamed``: they go to an SSE stream.
    ``early``: a local poll that may have answered from the fan-out (then None)."""
    queue = session.queue
    queue.ack(cursor)
    session.readers += 1
    session.touch()
    if early is not None:
        queue.takers.append(early)
    try:
        await queue.wait(after, seconds=seconds)
    finally:
        if early is not None:
            queue.takers.remove(early)
        session.readers -= 1
        session.touch()
    if early is not None and early.answered:
        return None
    return answer(session, after, streamed=streamed)


def answer(session: BridgeSession, after: int, *, streamed: bool = False) -> str:
    """A poll's answer: the frames after ``after`` (JSON text)."""
    queue = session.queue
    frames = queue.after(after)
    last = frames[-1][0] if frames else max(after, queue.acked)
    if streamed and frames:
        queue.mark_streamed(last)
    if not frames:
        if streamed and queue.close_code is not None:
            registry().drop(session.id)
        else:
            registry().finished(session)
    items = ",".join(f'{{"id":{fid},"frame":{text}}}' for fid, text in frames)
    return (
        f'{{"session":{json.dumps(session.id)},"frames":[{items}],'
        f'"cursor":{last},"closed":{json.dumps(queue.close_code)}}}'
    )
