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
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice

logger = logging.getLogger(__name__)


class FrameQueue:
    """See the module docstring. Implements :class:`gateway.ws.writer.Transport`."""

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
        #: The open SSE stream's body writer, if any (see ``send_text``), and the last frame
        #: id that stream has written (a new stream starts at its resume point).
        self.stream_write: Callable[[bytes], Awaitable[None]] | None = None
        self.stream_cursor = 0
        #: A write to the SSE stream is in progress (the stream's own or ``send_text``'s):
        #: another one waits for the stream's loop, so frames keep their order.
        self.writing = False
        #: The stream's loop waits for a write through to end.
        self.loop_after_write = False

    # Transport ---------------------------------------------------------------------------
    @property
    def writes_last(self) -> bool:
        """The hub queues frames for a long-polled session after it wrote the WebSocket
        connections' (its poll answers them in its own task after the fan-out anyway); a
        session whose SSE stream writes through (about a WebSocket frame's work) is written
        in its turn like a WebSocket."""
        return self.stream_write is None

    async def send_text(self, text: str, *, now: bool = False) -> None:
        """Queue one frame and wake whoever waits for frames (at once, ``now`` or not)."""
        if self.close_code is not None:
            return
        self.last_id += 1
        size = len(text)
        self.frames.append((self.last_id, text))
        self._sizes[self.last_id] = size
        self._untaken += size
        write = self.stream_write
        caught_up = self.stream_cursor == self.last_id - 1
        if write is not None and caught_up and not self.writing:
            await self._write_through(write, self.last_id, text)
        else:
            self.wake()

    async def _write_through(self, write, fid: int, text: str) -> None:
        """An SSE stream that has every frame before this one gets it at once, written from
        the sender (the hub's fan-out) like a WebSocket frame: no task switch to the
        stream's loop, which would write it one ASGI send per stream later. The loop is
        woken after (it writes what queued meanwhile, or tries this one again if the write
        failed)."""
        self.writing = True
        written = False
        try:
            await write(sse_event(fid, text).encode())
            written = True
            self.stream_cursor = fid
            self.mark_streamed(fid)
        except Exception:
            logger.debug("writing through to an SSE stream failed", exc_info=True)
        finally:
            self.writing = False
            # the loop sleeps on: unless this failed, more queued meanwhile, or it waits
            # for this write to end
            if not written or self.last_id > fid or self.loop_after_write:
                self.loop_after_write = False
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
        """The queued frames after ``cursor``, oldest first (the newest ``last_id - cursor``
        of the queue: ids are consecutive, so this never walks the frames kept before)."""
        count = min(self.last_id - cursor, len(self.frames))
        if count <= 0:
            return []
        if count == len(self.frames):
            return list(self.frames)
        newest = list(islice(reversed(self.frames), count))
        newest.reverse()
        return newest

    def mark_streamed(self, upto: int) -> None:
        """Frames up to ``upto`` went to an SSE stream: kept for resumption, within bounds."""
        upto = min(upto, self.last_id)
        for fid in range(self.streamed + 1, upto + 1):
            size = self._sizes.get(fid)
            if size is not None:  # else acked already
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
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(seconds, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def wake(self) -> None:
        """Wake every waiter (they look again at the queue)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _settle(waiter)


def sse_event(fid: int, text: str) -> str:
    """One frame as a Server-Sent Event (``id:`` = the frame id)."""
    data = "\n".join(f"data: {line}" for line in text.split("\n"))
    return f"id: {fid}\n{data}\n\n"


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
