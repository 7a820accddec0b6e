"""Queued runs waiting for their session's turn: an ended run wakes only the next one."""

from __future__ import annotations

import asyncio

from agents.services.runs import turns


async def test_an_ended_run_wakes_only_the_first_waiter_of_its_session():
    loop = asyncio.get_running_loop()
    woke: list[tuple[int, bool]] = []

    async def waiter(session_id: int, order: int) -> None:
        started = loop.time()
        await turns.nap(session_id, 5.0, order)
        woke.append((order, loop.time() - started < 1.0))

    tasks = [asyncio.create_task(waiter(7, order)) for order in (5, 2, 9)]
    other = asyncio.create_task(waiter(8, 1))
    await asyncio.sleep(0.05)
    turns.wake(7)
    await asyncio.sleep(0.05)
    assert woke == [(2, True)]  # the first by order, not the first to wait
    turns.wake(7)
    await asyncio.sleep(0.05)
    assert woke == [(2, True), (5, True)]
    turns.wake(99)  # a session nobody waits on
    await asyncio.sleep(0.05)
    assert woke == [(2, True), (5, True)]
    for task in (*tasks, other):
        task.cancel()
    await asyncio.gather(*tasks, other, return_exceptions=True)
    assert turns._waiters == {}  # cancelled waiters leave nothing behind


async def test_a_nap_ends_by_itself_without_a_wake_up():
    loop = asyncio.get_running_loop()
    started = loop.time()
    await turns.nap(3, 0.05, 0)
    assert 0.04 <= loop.time() - started < 1.0
    assert turns._waiters == {}
