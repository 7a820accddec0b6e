"""A real HTTP proxy on loopback that refuses WebSocket upgrades (403), as corporate proxies
do, and passes every other request through to the gateway. Runs on its own thread and loop,
so blocking test code (a CLI subprocess) does not stall it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

REFUSAL = (
    b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 26\r\n"
    b"connection: close\r\n\r\nwebsockets are not allowed"
)


class NoUpgradeProxy:
    """``with NoUpgradeProxy(gateway_port) as proxy:`` → ``proxy.port`` on 127.0.0.1."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refused = 0
        self.passed = 0
        self.loop = asyncio.new_event_loop()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, sock=self._sock)
        )
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        if b"\r\nupgrade: websocket" in head.lower():
            self.refused += 1
            writer.write(REFUSAL)
            await writer.drain()
            writer.close()
            return
        self.passed += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def __enter__(self) -> NoUpgradeProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self._sock.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
