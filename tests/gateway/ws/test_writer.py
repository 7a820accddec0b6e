"""Frame writes to one socket (gateway/ws/writer.py): at once after a quiet spell, coalesced
within the window, replies never held, in order, never after the close frame.

The unit tests write through a real asyncio transport on a socketpair and read the other
end; the end-to-end tests run the real gateway (uvicorn) with a long window."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time

import pytest

from gateway.bench import invoke as invoke_bench
from gateway.bench.client import Endpoint
from gateway.protocol import events as ev
from gateway.ws.writer import FrameWriter
from tests.gateway.gateway_process import TOKEN, connected

WINDOW = 0.2


class _Sink(asyncio.Protocol):
    """Our end of the socketpair: what the writer writes to."""


class Pair:
    """A FrameWriter on one end of a socketpair, and a reader of the other end."""

    def __init__(self, transport: asyncio.Transport, peer: socket.socket, writer: FrameWriter):
        self.transport = transport
        self.peer = peer
        self.writer = writer
        self.open = True
        self.buffer = b""

    def read_now(self) -> bytes:
        """Everything that has arrived at the peer so far (non-blocking)."""
        chunks = []
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_within(self, seconds: float) -> bytes:
        """What arrives at the peer within ``seconds`` (polled, bounded)."""
        deadline = time.monotonic() + seconds
        got = b""
        while time.monotonic() < deadline:
            got += self.read_now()
            await asyncio.sleep(0.005)
        return got + self.read_now()


@contextlib.asynccontextmanager
async def pair(window: float = WINDOW):
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(_Sink, sock=ours)
    box: dict[str, Pair] = {}
    writer = FrameWriter(transport, lambda: box["p"].open, window)
    box["p"] = p = Pair(transport, peer, writer)
    try:
        yield p
    finally:
        transport.close()
        peer.close()


def parse(data: bytes) -> list[str]:
    """The text frames in ``data`` (RFC 6455, unmasked, final); fails on anything else."""
    texts, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 == 0x81, f"not a final text frame: {b0:#x}"
        assert not b1 & 0x80, "server frames are not masked"
        size, pos = b1 & 0x7F, pos + 2
        if size == 126:
            size, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif size == 127:
            size, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
        assert pos + size <= len(data), "truncated frame"
        texts.append(data[pos : pos + size].decode())
        pos += size
    return texts


async def test_a_frame_after_a_quiet_spell_is_written_at_once():
    async with pair() as p:
        assert p.writer.send_text("first")
        assert parse(p.read_now()) == ["first"]
        assert p.writer.buffered_bytes() == 0


async def test_frames_within_the_window_leave_together_at_its_end_in_order():
    async with pair() as p:
        p.writer.send_text("a")
        assert parse(p.read_now()) == ["a"]
        texts = [f"frame {i} " + "é" * i for i in range(20)]
        for text in texts:
            assert p.writer.send_text(text)
        assert p.read_now() == b"", "frames inside the window were written before it ended"
        assert p.writer.buffered_bytes() == sum(2 + len(t.encode()) for t in texts)
        got = await p.read_within(WINDOW + 0.3)
        assert parse(got) == texts
        assert p.writer.buffered_bytes() == 0


async def test_after_the_window_the_next_frame_is_immediate_again():
    async with pair() as p:
        p.writer.send_text("a")
        p.writer.send_text("b")
        assert parse(await p.read_within(WINDOW + 0.2)) == ["a", "b"]
        await asyncio.sleep(WINDOW + 0.05)
        p.writer.send_text("c")
        assert parse(p.read_now()) == ["c"]


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 200_000])
async def test_frame_lengths_use_the_right_header(size: int):
    async with pair(window=0) as p:
        text = "x" * size
        assert p.writer.send_text(text)
        got = await p.read_within(0.2)
        assert parse(got) == [text]


async def test_window_zero_writes_every_frame_on_its_own():
    async with pair(window=0) as p:
        for i in range(5):
            p.writer.send_text(str(i))
            assert parse(p.read_now()) == [str(i)]


async def test_flush_writes_what_is_queued_now():
    async with pair() as p:
        p.writer.send_text("a")
        p.writer.send_text("b")
        p.writer.send_text("c")
        p.writer.flush()
        assert parse(p.read_now()) == ["a", "b", "c"]
        # the window's timer was cancelled: nothing more arrives
        assert await p.read_within(WINDOW + 0.1) == b""


async def test_a_reply_inside_the_window_leaves_at_once_after_what_is_queued():
    async with pair() as p:
        p.writer.send_text("a")
        p.writer.send_text("queued event")
        assert parse(p.read_now()) == ["a"]
        assert p.writer.send_text("reply", now=True)
        assert parse(p.read_now()) == ["queued event", "reply"]
        assert p.writer.buffered_bytes() == 0
        # the window's timer was cancelled with the queue: nothing more arrives
        assert await p.read_within(WINDOW + 0.1) == b""


async def test_a_reply_does_not_start_a_window():
    async with pair() as p:
        p.writer.send_text("reply 1", now=True)
        p.writer.send_text("reply 2", now=True)
        p.writer.send_text("event")
        assert parse(p.read_now()) == ["reply 1", "reply 2", "event"]
        p.writer.send_text("held")  # an event right after an event: the window applies
        assert p.read_now() == b""
        assert parse(await p.read_within(WINDOW + 0.2)) == ["held"]


async def test_a_closed_socket_gets_nothing_and_queued_frames_are_dropped():
    async with pair() as p:
        p.writer.send_text("a")
        p.writer.send_text("queued")
        p.read_now()
        p.open = False
        assert p.writer.send_text("refused") is False
        assert await p.read_within(WINDOW + 0.1) == b""
        assert p.writer.buffered_bytes() == 0


# end to end ----------------------------------------------------------------------------
E2E_WINDOW_US = 1_000_000


@pytest.mark.e2e
async def test_gateway_never_holds_a_reply_within_the_window(gateway_factory):
    gw = gateway_factory({"WINGMAN_WRITE_COALESCE_US": str(E2E_WINDOW_US)})
    async with connected(gw) as client:
        started = time.monotonic()
        for _ in range(3):  # each reply follows a write by far less than the window
            await client.ping_ok()
        took = time.monotonic() - started
    assert took < 0.5, f"three replies inside the 1 s window took {took:.3f} s"


@pytest.mark.e2e
async def test_invokes_are_not_held_within_the_window(gateway_factory):
    """node.invoke: the request event to the node, the node's ack and the caller's reply all
    leave at once (with a 1 s window, one held frame would take ~1 s)."""
    gw = gateway_factory(
        {"WINGMAN_WRITE_COALESCE_US": str(E2E_WINDOW_US), "WINGMAN_RATE_LIMIT": "100000"}
    )
    report = await invoke_bench.measure(Endpoint.parse(gw.url, token=TOKEN), invokes=6, warmup=2)
    assert report["invoke"]["p99"] < 500, report


@pytest.mark.e2e
async def test_queued_frames_go_out_before_the_close_frame(gateway_factory):
    gw = gateway_factory({"WINGMAN_WRITE_COALESCE_US": str(E2E_WINDOW_US)})
    async with connected(gw) as client:
        await asyncio.sleep(1.2)
        # Two more clients: their presence events reach ``client``, the first one written
        # at once (the window starts), the second queued until the window ends...
        async with connected(gw, name="b"), connected(gw, name="c"):
            await asyncio.sleep(0.3)
            gw.signal(signal.SIGTERM)  # ...but the drain closes the socket before that
            code, got = await client.expect_close(timeout=5)
    kinds = [f.get("event") for f in got if f.get("event") != ev.TICK]
    # its own, b's and c's presence, then the shutdown event
    assert kinds == [ev.PRESENCE] * 3 + [ev.SHUTDOWN], json.dumps(got)[:600]
    assert code == 1012
    assert await gw.await_exit(timeout=5) == 0, gw.log_tail()
