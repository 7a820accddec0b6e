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


async def test_a_run_ending_while_a_waiter_asks_is_not_missed():
    """The waiter's answer said "wait" (read before the run ahead ended), and the wake-up
    came before it napped: its nap returns at once instead of sleeping through."""
    loop = asyncio.get_running_loop()
    with turns.watching(4):
        seen = turns.ends(4)
        turns.wake(4)  # the run ahead ends while the waiter's ask is in flight
        started = loop.time()
        await turns.nap(4, 5.0, 0, seen)
        assert loop.time() - started < 1.0
        seen = turns.ends(4)
        started = loop.time()
        await turns.nap(4, 0.05, 0, seen)  # nothing ended since: a full nap
        assert loop.time() - started >= 0.04
    assert turns._watched == {} and turns._waiters == {}


async def test_only_the_first_waiter_of_a_session_leads():
    tasks = [asyncio.create_task(turns.nap(5, 5.0, order)) for order in (3, 8)]
    await asyncio.sleep(0.01)
    assert turns.leads(5, 1) and turns.leads(5, 3) and not turns.leads(5, 4)
    assert turns.leads(6, 99)  # nobody waits in that session
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_runs_executing_here():
    """A waiter behind runs that all execute here waits for their wake-ups (no polling)."""
    with turns.executing("r1"):
        assert turns.all_here(("r1",)) and turns.all_here(())
        assert not turns.all_here(("r1", "elsewhere"))
    assert not turns.all_here(("r1",))
