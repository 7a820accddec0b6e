"""Connection ordering guarantees that are hard to provoke through a socket."""

from __future__ import annotations

import json

from gateway.delivery.encoded import EncodedEvent
from gateway.delivery.hub import get_hub, reset_hub
from gateway.ws.connection import Connection
from tests.gateway.communicator import connect_frame


class RecordingTransport:
    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.closed: int | None = None

    async def send_text(self, text: str, *, now: bool = False) -> None:
        self.frames.append(json.loads(text))

    async def close(self, code: int) -> None:
        self.closed = code

    def buffered_bytes(self) -> int:
        return 0

    def abort_later(self, seconds: float) -> None:
        pass


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


class BackedUpTransport(RecordingTransport):
    """A socket whose peer stopped reading: ``unread`` bytes sit in its write buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.unread = 0
        self.abort_after: float | None = None

    def buffered_bytes(self) -> int:
        return self.unread

    def abort_later(self, seconds: float) -> None:
        self.abort_after = seconds


async def _backed_up_connection():
    """An established connection on a BackedUpTransport (policy set by the caller)."""
    hub = await get_hub()
    transport = BackedUpTransport()
    conn = Connection(transport, hub, client_ip="127.0.0.1")
    await conn.opened()
    await conn.received(json.dumps(connect_frame("hs")))
    return hub, transport, conn


async def test_slow_consumer_loses_droppable_events_then_closes_4008(wingman_policy):
    wingman_policy(max_buffered_bytes=4096)
    hub, transport, conn = await _backed_up_connection()
    conn.subscriptions.add("agent")

    await hub.fan_out(EncodedEvent.build("tick", {"ts": 1}))
    assert transport.frames[-1]["event"] == "tick" and transport.frames[-1]["seq"] == 1

    transport.unread = 5000  # over the limit: ticks and presence are dropped, seq moves on
    await hub.fan_out(EncodedEvent.build("tick", {"ts": 2}))
    await hub.fan_out(EncodedEvent.build("presence", {"ts": 2}))
    assert transport.frames[-1]["seq"] == 1 and transport.closed is None
    assert hub.stats.events_dropped == 2

    # a run's event is never dropped: it goes out, then the socket closes 4008
    await hub.fan_out(EncodedEvent.build("agent", {"type": "agent-complete"}))
    assert transport.frames[-1]["event"] == "agent" and transport.frames[-1]["seq"] == 4
    assert transport.closed == 4008 and transport.abort_after is not None
    await conn.closed_by_peer()
    await reset_hub()


async def test_reader_that_catches_up_is_not_closed(wingman_policy):
    wingman_policy(max_buffered_bytes=4096)
    hub, transport, conn = await _backed_up_connection()
    transport.unread = 5000
    await hub.fan_out(EncodedEvent.build("tick", {"ts": 1}))
    transport.unread = 0
    await hub.fan_out(EncodedEvent.build("tick", {"ts": 2}))
    assert [f["seq"] for f in transport.frames if f.get("event") == "tick"] == [2]
    assert transport.closed is None
    await conn.closed_by_peer()
    await reset_hub()


class SharedLog(RecordingTransport):
    """Records which connection a fan-out wrote to, in order, across connections."""

    writes_last = False  # a transport that may be written last declares it (a bridge queue)

    def __init__(self, log: list[str], name: str, *, writes_last: bool = False) -> None:
        super().__init__()
        self.log, self.name, self.writes_last = log, name, writes_last

    async def send_text(self, text: str, *, now: bool = False) -> None:
        await super().send_text(text, now=now)
        if json.loads(text).get("event") == "tick":
            self.log.append(self.name)


async def test_fan_out_writes_bridge_sessions_after_websockets():
    """An HTTP bridge answer costs several WebSocket frames: a fan-out writes the
    WebSocket connections first, whatever order they connected in."""
    hub = await get_hub()
    log: list[str] = []
    conns = []
    for name, last in (("bridge-1", True), ("ws-1", False), ("bridge-2", True), ("ws-2", False)):
        conn = Connection(SharedLog(log, name, writes_last=last), hub, client_ip="127.0.0.1")
        await conn.opened()
        await conn.received(json.dumps(connect_frame(f"hs-{name}")))
        conns.append(conn)
    await hub.fan_out(EncodedEvent.build("tick", {"ts": 1}))
    assert log == ["ws-1", "ws-2", "bridge-1", "bridge-2"]
    assert hub._may_write_last == 4  # (while none may, a fan-out does not ask each one)
    for conn in conns:
        await conn.closed_by_peer()
    assert hub._may_write_last == 0
    await reset_hub()
