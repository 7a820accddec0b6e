"""Wake-ups for the runs of this process waiting for their session's turn: the run that
ends wakes the next one at once, instead of its next ask of the database.

Only the waiter first in its session's order (the position of its prompt) is woken: the
others wait behind it, and waking every one of them (a burst of webhook deliveries queues
dozens of runs on one thread) made each ended run cost one database ask per queued run.
For the same reason only that first waiter (:func:`leads`) needs to ask the database on
its own, and only while a run ahead of it executes in another process; the others are
woken in turn as the runs ahead of them end here.

A run that ends while a waiter is between asks (its answer said "wait" because that run
had not ended yet) must not be missed: each session with waiters counts the runs that
ended here (:func:`ends`), a waiter notes the count before it asks, and its nap returns at
once when the count moved meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

#: session id -> {waiter: its run's order in the session}
_waiters: dict[int, dict[asyncio.Future[None], int]] = {}
#: session id -> [runs waiting for a turn in it here, runs of it that ended here meanwhile]
_watched: dict[int, list[int]] = {}
#: Runs executing in this process (waiting for their turn, or running): each wakes the next
#: waiter of its session when it ends.
_here: set[str] = set()


@contextlib.contextmanager
def executing(run_id: str) -> Iterator[None]:
    """While run ``run_id`` executes here (its end calls :func:`wake`)."""
    _here.add(run_id)
    try:
        yield
    finally:
        _here.discard(run_id)


def all_here(run_ids: tuple[str, ...]) -> bool:
    """Do all these runs execute here (so their ends wake this process's waiters)?"""
    return all(run_id in _here for run_id in run_ids)


@contextlib.contextmanager
def watching(session_id: int) -> Iterator[None]:
    """While a run of ``session_id`` waits for its turn here: count the runs that end."""
    entry = _watched.setdefault(session_id, [0, 0])
    entry[0] += 1
    try:
        yield
    finally:
        entry[0] -= 1
        if entry[0] <= 0 and _watched.get(session_id) is entry:
            del _watched[session_id]


def ends(session_id: int) -> int:
    """How many runs of a watched session ended here so far (note it before an ask)."""
    entry = _watched.get(session_id)
    return entry[1] if entry else 0


async def nap(session_id: int, seconds: float, order: int = 0, seen: int | None = None) -> None:
    """Sleep ``seconds``, or less when this waiter is the first of session ``session_id``
    (by ``order``) as a run of it ends here; not at all when a run ended since the waiter
    saw ``seen`` runs ended (:func:`ends`)."""
    if seen is not None and ends(session_id) != seen:
        return
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


def leads(session_id: int, order: int) -> bool:
    """Is no other run of ``session_id`` waiting here ahead of ``order``?"""
    return all(other >= order for other in _waiters.get(session_id, {}).values())


def wake(session_id: int) -> None:
    """A run of ``session_id`` ended in this process: the first of its waiting runs asks
    again now (it wakes the next when it ends)."""
    if (entry := _watched.get(session_id)) is not None:
        entry[1] += 1
    waiting = _waiters.get(session_id)
    if not waiting:
        return
    first = min(waiting, key=waiting.__getitem__)
    del waiting[first]
    first.get_loop().call_soon_threadsafe(_settle, first)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
