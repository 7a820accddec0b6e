"""HTTP keep-alive on the real servers: an idle connection outlives the idle expiry of common
clients (httpx: 5 s), so the client, not the gateway, is the one to close it. A gateway
closing at the client's own expiry races the client's next request on that connection: the
request fails with ECONNRESET (httpx ``ReadError``) though the gateway never read it — what a
flood of webhook deliveries hit on CI."""

from __future__ import annotations

import asyncio

import pytest

from tests.gateway.gateway_process import ASGI_SERVERS

pytestmark = pytest.mark.e2e

#: Longer than httpx's and uvicorn's 5 s default.
IDLE_SECONDS = 6.0


async def _get_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await asyncio.wait_for(reader.readexactly(length), timeout=10)
    return head.split(b"\r\n", 1)[0]


async def test_an_idle_keep_alive_connection_serves_a_request_after_six_seconds(gateway_factory):
    gateways = [gateway_factory({"WINGMAN_ASGI_SERVER": server}) for server in ASGI_SERVERS]
    connections = [await asyncio.open_connection("127.0.0.1", gw.port) for gw in gateways]
    for reader, writer in connections:
        assert await _get_health(reader, writer) == b"HTTP/1.1 200 OK"
    await asyncio.sleep(IDLE_SECONDS)
    for (reader, writer), server in zip(connections, ASGI_SERVERS, strict=True):
        assert await _get_health(reader, writer) == b"HTTP/1.1 200 OK", server
        writer.close()
