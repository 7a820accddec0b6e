"""A bridge session's transport: the frames a WebSocket would have sent, numbered and kept
until the client acknowledges them by cursor.

Every frame the connection sends gets the next id (1, 2, ...). ``/bridge/poll?cursor=N``
acknowledges every frame up to ``N`` (they are dropped) and returns those after it, so a poll
response lost in transit is returned again by the next poll (same cursor) and a frame is
never returned once acked. Frames written to a Server-Sent Events stream are kept as well
(``Last-Event-ID`` resumes after them) but, since an SSE client acks only when it reconnects
or sends, at most ``maxBufferedBytes`` of them: older ones count as delivered.

The slow-consumer rule of a WebSocket applies to what the client has not taken yet: frames
neither acked nor written to a stream, plus what the stream's socket still buffers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class FrameQueue:
    """See the module docstring. Implements :class:`gateway.ws.writer.Transport`."""

    #: The hub writes to bridge sessions after WebSocket connections: an HTTP answer (a
    #: waiting poll's, an SSE event) costs several WebSocket frames' worth of work.
    writes_last = True

    def __init__(self, *, max_bytes: int, on_abort: Callable[[], None]) -> None:
        self.frames: deque[tuple[int, str]] = deque()
        self.last_id = 0
        #: Highest id the client acknowledged (dropped from the queue).
        self.acked = 0
        #: Highest id written to a Server-Sent Events stream.
        self.streamed = 0
        #: The connection closed with this code (the client learns it after the last frame).
        self.close_code: int | None = None
        self._sizes: dict[int, int] = {}
        self._untaken = 0  # bytes of frames after ``streamed``
        self._retained = 0  # bytes of streamed, unacked frames
        self._max_bytes = max_bytes
        self._on_abort = on_abort
        self._waiters: list[asyncio.Future[None]] = []
        #: The socket of the open SSE stream, if any (``buffered_bytes`` / ``abort``).
        self.stream_socket = None

    # Transport ---------------------------------------------------------------------------
    async def send_text(self, text: str, *, now: bool = False) -> None:
        """Queue one frame and wake whoever waits for frames (at once, ``now`` or not)."""
        if self.close_code is not None:
            return
        self.last_id += 1
        size = len(text)
        self.frames.append((self.last_id, text))
        self._sizes[self.last_id] = size
        self._untaken += size
        self.wake()

    async def close(self, code: int) -> None:
        """The connection closed: no frame after this one; pollers learn the code."""
        if self.close_code is None:
            self.close_code = code
        self.wake()

    def buffered_bytes(self) -> int:
        """Bytes the client has not taken: unsent frames plus the SSE socket's buffer."""
        sock = self.stream_socket
        return self._untaken + (sock.buffered_bytes() if sock is not None else 0)

    def abort_later(self, seconds: float) -> None:
        """Drop the session (and what it holds) if it is still there after ``seconds``."""
        asyncio.get_running_loop().call_later(seconds, self._on_abort)

    # cursor ------------------------------------------------------------------------------
    def ack(self, cursor: int) -> None:
        """Forget every frame up to ``cursor`` (the client has them)."""
        cursor = min(cursor, self.last_id)
        while self.frames and self.frames[0][0] <= cursor:
            fid, _ = self.frames.popleft()
            size = self._sizes.pop(fid)
            if fid > self.streamed:
                self._untaken -= size
            else:
                self._retained -= size
        self.acked = max(self.acked, cursor)
        self.streamed = max(self.streamed, self.acked)

    def after(self, cursor: int) -> list[tuple[int, str]]:
        """The queued frames after ``cursor``, oldest first."""
        return [(fid, text) for fid, text in self.frames if fid > cursor]

    def mark_streamed(self, upto: int) -> None:
        """Frames up to ``upto`` went to an SSE stream: kept for resumption, within bounds."""
        for fid, _ in self.frames:
            if fid > upto:
                break
            if fid > self.streamed:
                size = self._sizes[fid]
                self._untaken -= size
                self._retained += size
        self.streamed = max(self.streamed, upto)
        while self._retained > self._max_bytes and self.frames:
            self.ack(self.frames[0][0])

    @property
    def finished(self) -> bool:
        """Closed and every frame acknowledged: nothing more to deliver."""
        return self.close_code is not None and not self.frames

    # waiting -----------------------------------------------------------------------------
    async def wait(self, cursor: int, *, seconds: float) -> None:
        """Return when a frame after ``cursor`` is queued, the queue closed, or after
        ``seconds``."""
        if self.last_id > cursor or self.close_code is not None or seconds <= 0:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def wake(self) -> None:
        """Wake every waiter (they look again at the queue)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
