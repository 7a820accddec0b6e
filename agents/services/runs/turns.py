"""Wake-ups for the runs of this process waiting for their session's turn: the run that
ends wakes the next one at once, instead of its next ask of the database.

Only the waiter first in its session's order (the position of its prompt) is woken: the
others wait behind it, and waking every one of them (a burst of webhook deliveries queues
dozens of runs on one thread) made each ended run cost one database ask per queued run.
"""

from __future__ import annotations

import asyncio
import contextlib

#: session id -> {waiter: its run's order in the session}
_waiters: dict[int, dict[asyncio.Future[None], int]] = {}


async def nap(session_id: int, seconds: float, order: int = 0) -> None:
    """Sleep ``seconds``, or less when this waiter is the first of session ``session_id``
    (by ``order``) as a run of it ends here."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = _waiters.setdefault(session_id, {})
    waiting[future] = order
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await future
    finally:
        waiting.pop(future, None)
        if not waiting and _waiters.get(session_id) is waiting:
            del _waiters[session_id]


def wake(session_id: int) -> None:
    """A run of ``session_id`` ended in this process: the first of its waiting runs asks
    again now (it wakes the next when it ends)."""
    waiting = _waiters.get(session_id)
    if not waiting:
        return
    first = min(waiting, key=waiting.__getitem__)
    del waiting[first]
    first.get_loop().call_soon_threadsafe(_settle, first)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
