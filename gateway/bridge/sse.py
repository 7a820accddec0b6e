"""The Server-Sent Events stream of a session held by this process (``GET /bridge/sse``).

While the stream waits, the session's queue hands every new frame to :meth:`LocalStream.deliver`,
which writes it to the response at once: during the hub's fan-out, when a WebSocket frame
would be written, and without waking the stream's task (a task switch, a new wait and one
loop iteration later, per frame and per client: ``wingman gateway bench --mode bridge``).
Each event is written on its own, never held back for more. The task itself writes what was
queued before it started waiting, the ``close`` event and keepalive comments.

Writing from the fan-out must not wait for a slow reader (that would stall every other
client), so the stream's socket is never paused (``unthrottle``): what the client leaves
unread counts toward the session's slow-consumer bound instead (FrameQueue.buffered_bytes),
exactly as on a WebSocket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.bridge.sessions import BridgeSession, registry

#: An idle stream gets a comment line this often (proxies drop silent connections).
SSE_KEEPALIVE_SECONDS = 15.0

_KEEPALIVE = {"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True}


def event(fid: int, text: str) -> str:
    """One frame as an SSE event (``id:`` = the frame's id)."""
    data = "\n".join(f"data: {line}" for line in text.split("\n"))
    return f"id: {fid}\n{data}\n\n"


def close_event(code: int) -> bytes:
    return f'event: close\ndata: {{"code":{code}}}\n\n'.encode()


class LocalStream:
    """See the module docstring."""

    def __init__(self, session: BridgeSession, send, cursor: int, socket: Any) -> None:
        self.session = session
        self.send = send
        #: Highest frame id written to this stream.
        self.cursor = cursor
        self.socket = socket
        self._resume: asyncio.Future[None] | None = None

    async def run(self, gone: asyncio.Task) -> None:
        """Write frames as they are queued until the client leaves or the session ends."""
        queue = self.session.queue
        gone.add_done_callback(lambda _: self.wake())  # a disconnect ends the wait at once
        await self.send({"type": "http.response.body", "body": b": ok\n\n", "more_body": True})
        while not gone.done():
            await self._write(queue.after(self.cursor))
            if queue.close_code is not None:
                close = close_event(queue.close_code)
                await self.send({"type": "http.response.body", "body": close})
                registry().drop(self.session.id)
                return
            before = self.cursor
            await self._idle()
            quiet = self.cursor == before and not queue.after(before) and queue.close_code is None
            if quiet and not gone.done():
                await self.send(_KEEPALIVE)
        await self.send({"type": "http.response.body", "body": b""})

    async def stream(self, gone: asyncio.Task) -> None:
        """:meth:`run` with the socket unthrottled meanwhile (see the module docstring)."""
        if self.socket is None:
            await self.run(gone)
            return
        self.socket.unthrottle()
        try:
            await self.run(gone)
        finally:
            self.socket.throttle()

    async def _idle(self) -> None:
        """Let the queue write new frames through :meth:`deliver` until the session closes,
        the client leaves or ``SSE_KEEPALIVE_SECONDS`` pass."""
        queue = self.session.queue
        if queue.last_id > self.cursor or queue.close_code is not None:
            return  # queued while this stream was writing: the task writes it
        loop = asyncio.get_running_loop()
        self._resume = loop.create_future()
        timer = loop.call_later(SSE_KEEPALIVE_SECONDS, self.wake)
        queue.takers.append(self)
        try:
            await self._resume
        finally:
            queue.takers.remove(self)
            timer.cancel()
            self._resume = None

    async def deliver(self, fid: int, text: str) -> None:
        """The queue got frame ``fid``: write it now (called from ``send_text``)."""
        if fid == self.cursor + 1:
            await self._write([(fid, text)])
        else:  # not the next one (never expected): the task writes what it missed
            self.wake()

    def wake(self) -> None:
        """End the current wait (session closed, client gone, keepalive due)."""
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    async def _write(self, frames: list[tuple[int, str]]) -> None:
        if not frames:
            return
        self.cursor = frames[-1][0]
        data = "".join(event(fid, text) for fid, text in frames)
        await self.send({"type": "http.response.body", "body": data.encode(), "more_body": True})
        self.session.queue.mark_streamed(self.cursor)
        self.session.touch()
