"""The bridge frame queue's cursor bookkeeping (gateway/bridge/queue.py), without a server."""

from __future__ import annotations

import asyncio

from gateway.bridge.queue import FrameQueue


def _queue(frames: int, *, max_bytes: int = 1 << 20) -> FrameQueue:
    queue = FrameQueue(max_bytes=max_bytes, on_abort=lambda: None)

    async def fill() -> None:
        for n in range(1, frames + 1):
            await queue.send_text(f"frame-{n}")

    asyncio.run(fill())
    return queue


def ids(frames: list[tuple[int, str]]) -> list[int]:
    return [fid for fid, _ in frames]


def test_after_returns_the_frames_past_any_cursor_also_once_some_were_acked() -> None:
    queue = _queue(10)
    assert ids(queue.after(0)) == list(range(1, 11))
    assert ids(queue.after(7)) == [8, 9, 10]
    assert queue.after(10) == [] and queue.after(99) == []
    queue.ack(3)
    assert ids(queue.after(0)) == list(range(4, 11))  # a cursor behind the acked ones
    assert ids(queue.after(5)) == [6, 7, 8, 9, 10]
    assert queue.after(6)[0] == (7, "frame-7")


def test_streamed_frames_are_kept_within_the_byte_bound_and_count_as_taken() -> None:
    size = len("frame-1")
    queue = _queue(9, max_bytes=4 * size)
    assert queue.buffered_bytes() == 9 * size
    queue.mark_streamed(3)
    assert queue.buffered_bytes() == 6 * size  # streamed frames are no longer untaken
    assert ids(queue.after(0)) == list(range(1, 10))  # ... but kept for Last-Event-ID
    queue.mark_streamed(3)  # again: nothing changes
    assert queue.buffered_bytes() == 6 * size
    queue.mark_streamed(9)
    assert queue.buffered_bytes() == 0
    assert ids(queue.after(0)) == [6, 7, 8, 9]  # older streamed frames over the bound went
    queue.ack(7)
    assert ids(queue.after(0)) == [8, 9]


def test_a_wait_returns_on_a_frame_or_after_its_time() -> None:
    async def scenario() -> tuple[float, float]:
        queue = FrameQueue(max_bytes=1 << 20, on_abort=lambda: None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await queue.wait(0, seconds=0.05)
        timed_out = loop.time() - started
        loop.call_later(0.01, lambda: asyncio.ensure_future(queue.send_text("x")))
        started = loop.time()
        await queue.wait(0, seconds=5)
        woken = loop.time() - started
        assert queue._waiters == []
        return timed_out, woken

    timed_out, woken = asyncio.run(scenario())
    assert 0.04 <= timed_out < 1.0
    assert woken < 1.0


def test_a_caught_up_sse_stream_gets_each_frame_from_the_sender_in_order() -> None:
    async def scenario() -> tuple[list[bytes], list[int], int]:
        queue = FrameQueue(max_bytes=1 << 20, on_abort=lambda: None)
        await queue.send_text("before")  # queued before the stream: the loop's to write
        written: list[bytes] = []
        gate = asyncio.Event()
        gate.set()

        async def write(data: bytes) -> None:
            await gate.wait()  # a socket that is (not) taking data
            written.append(data)

        queue.stream_write, queue.stream_cursor = write, 0
        await queue.send_text("not-caught-up")  # frame 1 is not written yet: queued
        assert written == []
        queue.stream_cursor = 2  # the stream's loop wrote frames 1 and 2
        await queue.send_text("third")  # caught up: written by the sender itself
        gate.clear()
        blocked = asyncio.ensure_future(queue.send_text("fourth"))  # waits for the socket
        await asyncio.sleep(0.01)
        assert queue.writing
        await queue.send_text("fifth")  # a write is in progress: queued for the loop
        gate.set()
        await blocked
        return written, [fid for fid, _ in queue.after(queue.stream_cursor)], queue.streamed

    written, left, streamed = asyncio.run(scenario())
    assert written == [b"id: 3\ndata: third\n\n", b"id: 4\ndata: fourth\n\n"]
    assert left == [5]  # the loop writes it, after frame 4
    assert streamed == 4


def test_a_session_is_written_last_in_a_fan_out_only_while_it_is_long_polled() -> None:
    queue = FrameQueue(max_bytes=1 << 20, on_abort=lambda: None)
    assert queue.writes_last  # its poll answers in its own task after the fan-out

    async def write(data: bytes) -> None:
        pass

    queue.stream_write = write
    assert not queue.writes_last  # an SSE stream writing through: in turn, like a WebSocket
