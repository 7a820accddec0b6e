"""FrameQueue's cursor bookkeeping once an SSE stream retains frames (it reads from the
newest end, never scanning what is retained): ids, byte counts and the retention bound."""

from __future__ import annotations

import asyncio

from gateway.bridge.queue import FrameQueue


async def _queue(count: int, *, max_bytes: int) -> FrameQueue:
    queue = FrameQueue(max_bytes=max_bytes, on_abort=lambda: None)
    for n in range(count):
        await queue.send_text(f"frame-{n:03d}")  # 9 bytes each
    return queue


async def test_after_returns_the_frames_after_a_cursor_oldest_first() -> None:
    queue = await _queue(10, max_bytes=1000)
    assert [fid for fid, _ in queue.after(0)] == list(range(1, 11))
    assert queue.after(7) == [(8, "frame-007"), (9, "frame-008"), (10, "frame-009")]
    assert queue.after(10) == [] and queue.after(99) == []
    queue.ack(4)
    assert [fid for fid, _ in queue.after(0)] == [5, 6, 7, 8, 9, 10]
    assert [fid for fid, _ in queue.after(6)] == [7, 8, 9, 10]


async def test_streamed_frames_are_retained_within_the_bound_and_counted_once() -> None:
    queue = await _queue(10, max_bytes=40)
    assert queue.buffered_bytes() == 90
    queue.mark_streamed(3)
    queue.mark_streamed(2)  # older than what was streamed: nothing changes
    assert queue.buffered_bytes() == 63 and queue.streamed == 3
    queue.mark_streamed(8)  # 8 frames streamed, 72 bytes: the oldest go beyond 40 bytes
    assert queue.buffered_bytes() == 18
    assert [fid for fid, _ in queue.frames] == [5, 6, 7, 8, 9, 10] and queue.acked == 4
    assert [fid for fid, _ in queue.after(6)] == [7, 8, 9, 10]  # resumable after an id
    queue.ack(9)
    assert [fid for fid, _ in queue.frames] == [10] and queue.buffered_bytes() == 9


async def test_wait_returns_on_a_frame_or_after_its_time() -> None:
    queue = await _queue(2, max_bytes=100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await queue.wait(1, seconds=5)  # frame 2 is there already
    await queue.wait(2, seconds=0.05)
    assert 0.04 < loop.time() - started < 1
    waiting = loop.create_task(queue.wait(2, seconds=5))
    await asyncio.sleep(0)
    await queue.send_text("frame-new")
    await asyncio.wait_for(waiting, 1)
    assert queue._waiters == []
