"""A minimal WebSocket client on :class:`asyncio.Protocol` callbacks, for the agent-stream
bench: frames are cut out of the reads by hand and stamped on arrival."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from gateway.bench.client import BenchError, Endpoint


class RawSocket(asyncio.Protocol):
    """A minimal WebSocket client on :class:`asyncio.Protocol` callbacks: the measuring side
    must be much cheaper than the server it measures (they share two cores), so frames are
    cut out of the reads by hand and stamped in ``data_received`` (as ``client.py`` does for
    the fan-out bench), with no task wake-up and no timer per read; only the stamp is looked
    at. A read that waits longer than ``IDLE_SECONDS`` fails the run."""

    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: bytes | None = None
        self.frames: deque[tuple[int, bytes]] = deque()
        self.failure: BenchError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reads = 0
        self._watchdog: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint) -> RawSocket:
        loop = asyncio.get_running_loop()
        _, ws = await asyncio.wait_for(
            loop.create_connection(cls, endpoint.host, endpoint.port), 10
        )
        key = base64.b64encode(os.urandom(16)).decode()
        path = urlsplit(endpoint.url).path or "/"
        ws.write(
            f"GET {path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            while ws.head is None:
                await asyncio.wait_for(ws._wait(), 10)
            if b" 101 " not in ws.head.split(b"\r\n", 1)[0]:
                raise BenchError(f"WebSocket upgrade refused: {ws.head[:80]!r}")
        except BaseException:
            ws.close()
            raise
        ws._watch()
        return ws

    # asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrived = time.time_ns()
        self.reads += 1
        self.buffer += data
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = bytes(self.buffer[: end + 4])
            del self.buffer[: end + 4]
        for opcode, payload in self._frames():
            if opcode == 0x9:
                self._pong(payload)
            elif opcode == 0x8:
                self._fail(BenchError(f"closed by the gateway: {payload[:2].hex()}"))
            elif opcode in (0x1, 0x2):
                self.frames.append((arrived, payload))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(BenchError("the gateway closed the connection"))

    # -----------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BenchError) -> None:
        self.failure = self.failure or error
        self._wake()

    async def _wait(self) -> None:
        if self.failure is not None:
            raise self.failure
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        if self.failure is not None and not self.frames:
            raise self.failure

    def _watch(self) -> None:
        """Fail a read that waits too long (checked once a second, not armed per read)."""
        loop = asyncio.get_running_loop()
        seen, since = -1, loop.time()

        def check() -> None:
            nonlocal seen, since
            if self.reads != seen or self.waiter is None:
                seen, since = self.reads, loop.time()
            elif loop.time() - since > self.IDLE_SECONDS:
                self._fail(BenchError(f"no frame from the gateway for {self.IDLE_SECONDS:g} s"))
                return
            self._watchdog = loop.call_later(1.0, check)

        self._watchdog = loop.call_later(1.0, check)

    def send(self, obj: dict[str, Any]) -> None:
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        size = len(payload)
        head = bytes([0x81]) + (
            bytes([0x80 | size])
            if size < 126
            else bytes([0x80 | 126]) + size.to_bytes(2, "big")
            if size < 65536
            else bytes([0x80 | 127]) + size.to_bytes(8, "big")
        )
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.write(head + mask + body)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _pong(self, data: bytes) -> None:
        mask = os.urandom(4)
        self.write(
            bytes([0x8A, 0x80 | len(data)])
            + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        )

    async def messages(self):
        """Yield (arrival time_ns, message bytes) for every text/binary frame."""
        frames = self.frames
        while True:
            while frames:
                yield frames.popleft()
            await self._wait()

    def _frames(self):
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            opcode, size = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if size == 126:
                size, start = int.from_bytes(buf[start : start + 2], "big"), start + 2
            elif size == 127:
                size, start = int.from_bytes(buf[start : start + 8], "big"), start + 8
            if len(buf) < start + size:
                break
            yield opcode, bytes(buf[start : start + size])
            pos = start + size
        del buf[:pos]

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.transport is not None:
            self.transport.close()
