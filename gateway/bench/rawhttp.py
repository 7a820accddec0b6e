"""A minimal keep-alive HTTP/1.1 client on :class:`asyncio.Protocol` callbacks, for the
bridge bench: answers (``Content-Length`` bodies) and Server-Sent Events are cut out of the
reads by hand and stamped in ``data_received``, like :class:`~gateway.bench.rawsocket.RawSocket`
does for WebSocket frames.

Hundreds of simulated clients share one bench process (and the gateway's two cores): a
timestamp taken when a client's coroutine gets to run would add the bench's own queue of
ready clients to the gateway's latency. A stamp taken when the bytes are read from the socket
measures the gateway (the read happens in the loop iteration that saw the socket readable).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from gateway.bench.client import BenchError


class RawHttp(asyncio.Protocol):
    """One keep-alive connection: ``get`` answers (stamped), or one SSE stream (``events``)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.streaming = False
        #: (arrival time_ns of the read that completed it, body or event text)
        self.items: deque[tuple[int, str]] = deque()
        self.failure: BenchError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self._length: int | None = None  # body length of the answer being read

    @classmethod
    async def open(cls, host: str, port: int) -> RawHttp:
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(loop.create_connection(cls, host, port), 10)
        conn.host = f"{host}:{port}"
        return conn

    # asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrived = time.time_ns()
        self.buffer += data
        if self.streaming:
            self._cut_events(arrived)
        else:
            self._cut_answers(arrived)
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.failure = self.failure or BenchError("the gateway closed the connection")
        self._wake()

    # parsing -------------------------------------------------------------------------
    def _head(self) -> dict[str, str] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        if " 200 " not in lines[0] + " ":
            self.failure = BenchError(f"bridge: {lines[0]}")
            return None
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        return fields

    def _cut_answers(self, arrived: int) -> None:
        while True:
            if self._length is None:
                fields = self._head()
                if fields is None:
                    return
                if "content-length" not in fields:  # the SSE stream's head
                    self.streaming = True
                    self._cut_events(arrived)
                    return
                self._length = int(fields["content-length"])
            if len(self.buffer) < self._length:
                return
            body = bytes(self.buffer[: self._length]).decode()
            del self.buffer[: self._length]
            self._length = None
            self.items.append((arrived, body))

    def _cut_events(self, arrived: int) -> None:
        while (end := self.buffer.find(b"\n\n")) >= 0:
            event = bytes(self.buffer[: end + 2]).decode()
            del self.buffer[: end + 2]
            self.items.append((arrived, event))

    # waiting -------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next(self) -> tuple[int, str]:
        while not self.items:
            if self.failure is not None:
                raise self.failure
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.items.popleft()

    # requests ------------------------------------------------------------------------
    def _request(self, target: str, headers: str = "") -> None:
        head = f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n{headers}\r\n"
        self.transport.write(head.encode())

    async def get(self, target: str) -> tuple[int, str]:
        """(arrival time_ns, body) of a GET's answer."""
        self._request(target)
        return await self._next()

    async def events(self, target: str, headers: str):
        """Yield (arrival time_ns, event text) for each event of an SSE stream."""
        self._request(target, headers)
        while True:
            yield await self._next()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
