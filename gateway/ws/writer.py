"""Frame writes for one uvicorn WebSocket: straight to the socket, coalesced under a flood
(and :class:`TwistedSocket`, the same interface on daphne).

Every frame the gateway sends to a socket (responses and events alike, so their order is
kept) goes through :class:`FrameWriter`:

- a frame written when the socket has been quiet for ``window`` seconds leaves at once, so
  a sparse stream (a model producing tens of tokens a second, a reply, a tick) gets no added
  latency;
- frames that follow it within the window wait, and leave together in one ``send`` when the
  window ends;
- a frame sent ``now`` (a reply to a request, or an event that is itself a request to this
  connection: ``node.invoke.request``) never waits: it leaves at once, after what is queued
  (in the same ``send``), and does not start a window. Request/response traffic is paced by
  the peer's requests, not a stream to coalesce; holding a reply for the window put it on
  every invoke's round trip (``wingman gateway bench --mode invoke``).

On this 2-core machine one ``send`` of a small frame on loopback costs ~25 µs of the
gateway's CPU, most of it waking the reader; an agent streaming thousands of chunks a second
would otherwise pay that per chunk (``wingman gateway bench --mode agent-stream``). The
window (``gateway.policy.writeCoalesceUs``, default 500 µs, 0 = one ``send`` per frame)
bounds the latency this adds.

The writer serialises RFC 6455 frames itself (unmasked, final, no extensions: the gateway
runs uvicorn with ``ws_per_message_deflate=False``) and writes only while uvicorn's protocol
is open; otherwise it refuses and the caller goes through ASGI ``send``, which raises as
uvicorn does for a closed socket. Close frames still go through ASGI, after a :meth:`flush`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Protocol

OP_TEXT = 0x1
#: Scope key of an HTTP request's socket, put there by gateway/server/serve.py (``buffered_bytes``
#: and ``abort``): a long response (Server-Sent Events) must not queue without bound for a
#: client that stopped reading.
SOCKET_SCOPE_KEY = "wingman.socket"


#: A slow consumer closed 4008 that still reads nothing is dropped after this long.
SLOW_CONSUMER_ABORT_SECONDS = 5.0
#: Scope key under which the ASGI server puts the socket's :class:`~gateway.ws.writer.FrameWriter`
#: (uvicorn) or :class:`~gateway.ws.writer.TwistedSocket` (daphne), see gateway/server/serve.py:
#: frames, ``buffered_bytes`` and ``abort``.
FRAMES_SCOPE_KEY = "wingman.frames"


def frame_head(opcode: int, length: int) -> bytes:
    """RFC 6455 header of one unmasked, final server frame."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


class FrameWriter:
    """See the module docstring."""

    __slots__ = (
        "_is_open",
        "_timer",
        "last_write",
        "loop",
        "pending",
        "pending_bytes",
        "transport",
        "window",
    )

    def __init__(
        self, transport: asyncio.Transport, is_open: Callable[[], bool], window: float
    ) -> None:
        self.transport = transport
        self._is_open = is_open
        self.window = window
        self.loop = asyncio.get_running_loop()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.last_write = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def send_text(self, text: str, *, now: bool = False) -> bool:
        """Queue or write one text frame (``now``: write it at once, after what is queued);
        False (nothing done) when the socket is not open."""
        if not self._is_open():
            return False
        data = text.encode()
        frame = frame_head(OP_TEXT, len(data)) + data
        if now:
            if self.pending:
                self.pending.append(frame)
                self.flush()
            else:
                self.transport.write(frame)
            return True
        if self._timer is None:
            now = self.loop.time()
            if now - self.last_write >= self.window:
                self.last_write = now
                self.transport.write(frame)
                return True
            self._timer = self.loop.call_at(self.last_write + self.window, self.flush)
        self.pending.append(frame)
        self.pending_bytes += len(frame)
        return True

    def flush(self) -> None:
        """Write what is queued now (the window's end, or before a close frame)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.pending:
            return
        data = b"".join(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        if self._is_open():
            self.last_write = self.loop.time()
            self.transport.write(data)

    def buffered_bytes(self) -> int:
        """Bytes not yet read by the peer's socket: queued here plus the transport's buffer."""
        return self.pending_bytes + self.transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the TCP connection now (what is buffered for it is freed)."""
        self.transport.abort()


class TwistedSocket:
    """The same per-socket interface on daphne (gateway/server/serve.py): frames go through ASGI
    ``send`` (daphne writes them to Twisted at once, never waiting for the reader), and this
    reads Twisted's write buffer, so the slow-consumer rule (close 4008, then abort) applies
    on daphne too. Also an HTTP request's :data:`SOCKET_SCOPE_KEY` there."""

    __slots__ = ("transport", "ws")

    def __init__(self, transport, ws=None) -> None:
        self.transport = transport
        #: the autobahn protocol of a WebSocket (its own send queue counts too)
        self.ws = ws

    def send_text(self, text: str, *, now: bool = False) -> bool:
        return False  # the caller sends through ASGI

    def flush(self) -> None:
        """Nothing is held here."""

    def buffered_bytes(self) -> int:
        """Bytes Twisted holds for the peer (its two write buffers) plus autobahn's queue."""
        t = self.transport
        size = len(getattr(t, "dataBuffer", b"")) - getattr(t, "offset", 0)
        size += getattr(t, "_tempDataLen", 0)
        if self.ws is not None:
            size += sum(len(data) for data, _ in self.ws.send_queue)
        return size

    def abort(self) -> None:
        """Drop the TCP connection now (what is buffered for it is freed)."""
        if getattr(self.transport, "connected", False):
            self.transport.abortConnection()


class AsyncioSocket:
    """An HTTP request's :data:`SOCKET_SCOPE_KEY` on uvicorn: its transport's write buffer."""

    __slots__ = ("transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def buffered_bytes(self) -> int:
        return 0 if self.transport.is_closing() else self.transport.get_write_buffer_size()

    def abort(self) -> None:
        self.transport.abort()


class Transport(Protocol):
    """What the connection needs from the socket (the consumer implements it)."""

    async def send_text(self, text: str, *, now: bool = False) -> None:
        """Send one frame; ``now``: never held in a write-coalescing window (a reply)."""
        ...

    async def close(self, code: int) -> None: ...

    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the peer (0 when the server cannot tell)."""
        ...

    def abort_later(self, seconds: float) -> None:
        """Drop the TCP connection if it is still there after ``seconds``."""
        ...
