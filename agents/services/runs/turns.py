"""Wake-ups for the runs of this process waiting for their session's turn: the run that
ends wakes them at once, instead of their next ask of the database."""

from __future__ import annotations

import asyncio
import contextlib

_waiters: dict[int, set[asyncio.Future[None]]] = {}


async def nap(session_id: int, seconds: float) -> None:
    """Sleep ``seconds``, or less when a run of session ``session_id`` ends here first."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = _waiters.setdefault(session_id, set())
    waiting.add(future)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await future
    finally:
        waiting.discard(future)
        if not waiting and _waiters.get(session_id) is waiting:
            del _waiters[session_id]


def wake(session_id: int) -> None:
    """A run of ``session_id`` ended in this process: its waiting runs ask again now."""
    for future in _waiters.pop(session_id, set()):
        future.get_loop().call_soon_threadsafe(_settle, future)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
