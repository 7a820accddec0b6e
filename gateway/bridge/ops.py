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


async def do_poll(
    session: BridgeSession, *, cursor: int, after: int, seconds: float, streamed: bool = False
) -> str:
    """Ack up to ``cursor``, wait (at most ``seconds``) for a frame after ``after`` and
    answer with the frames after it (JSON text). ``streamed``: they go to an SSE stream."""
    queue = session.queue
    queue.ack(cursor)
    session.readers += 1
    session.touch()
    try:
        await queue.wait(after, seconds=seconds)
    finally:
        session.readers -= 1
        session.touch()
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
