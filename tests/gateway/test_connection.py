"""Connection ordering guarantees that are hard to provoke through a socket."""

from __future__ import annotations

import json

from gateway.connection import Connection
from gateway.events import EncodedEvent
from gateway.hub import get_hub, reset_hub
from tests.gateway.communicator import connect_frame


class RecordingTransport:
    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.closed: int | None = None

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))

    async def close(self, code: int) -> None:
        self.closed = code


async def test_events_never_precede_hello_ok():
    hub = await get_hub()
    transport = RecordingTransport()
    conn = Connection(transport, hub, client_ip="127.0.0.1")
    await conn.opened()

    original = conn._establish

    async def establish_then_event(client):
        await original(client)
        # Something is broadcast right after the connection joined presence,
        # before its hello-ok went out.
        await hub.fan_out(EncodedEvent.build("tick", {"ts": 1}))

    conn._establish = establish_then_event
    await conn.received(json.dumps(connect_frame("hs")))
    kinds = [(f.get("type"), f.get("event")) for f in transport.frames]
    assert kinds[:3] == [("event", "connect.challenge"), ("res", None), ("event", "tick")]
    assert transport.frames[2]["seq"] == 1
    await conn.closed_by_peer()
    await reset_hub()
