"""Per-client request rate limit, shared between processes through Django's cache.

A sliding-window approximation over two fixed one-minute windows (the previous window's
count weighted by how much of it still overlaps). Keyed by the client's identity, not the
socket, so reconnecting does not reset it.

Every frame counts, so a flood is cheap to refuse: this process also keeps its own counts
per client (:class:`_LocalCounts`). They are a lower bound of the shared ones, so once they
alone are over the limit the frame is refused without asking the cache (no thread hop per
frame of a flood); the frames refused that way are added to the shared count later in one
step (with the next shared check, or at once when the client is to be closed 4029).

On the local-memory cache (embedded: one process) there is nothing to share: the counts
there would be this process's own, so they are not written at all and the local counts
decide (the same decisions, without three cache calls per frame: ~18% of the gateway's CPU
per round trip in ``wingman gateway bench --mode invoke``).

On a shared cache at most one check per client is in flight in this process at a time (a
Redis script each, from the event loop): frames of that client arriving meanwhile wait for its
answer and add this process's frames not yet shared, themselves included, so each decision
counts every frame this process has seen and every frame the others had shared by then.
When a check returns with frames left unshared, the next one starts at once, so another
process sees them one round trip later. Many connections of one client (one identity, or
one address) sending together cost one check per round trip instead of one per frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from gateway.state import cache as shared

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_TTL = WINDOW_SECONDS * 2 + 5


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_ms: int = 0
    #: How far over the limit this client is (0 when allowed): sustained abuse closes 4029.
    excess: int = 0


def _window_key(key: str, window: int) -> str:
    return f"gw:rl:{key}:{window}"


def _count(key: str, window: int, unsynced: dict[int, int]) -> tuple[int, int]:
    """Add this process's not yet shared requests; (this window's count, previous one's).
    Sync, a cache call per window (see :func:`_acount` for the usual case)."""
    current = 0
    for w, n in unsynced.items():
        value = shared.incr(_window_key(key, w), timeout=_TTL, delta=n).value
        if w == window:
            current = value
    if window not in unsynced:
        current = shared.counter(_window_key(key, window))
    return current, shared.counter(_window_key(key, window - 1))


async def _acount(key: str, window: int, unsynced: dict[int, int]) -> tuple[int, int]:
    """:func:`_count` from the event loop. The usual case (only this window's requests to
    add) on Redis is one script through an asyncio client: no thread hop."""
    if unsynced.keys() == {window}:
        both = await shared.aincr_and_read(
            _window_key(key, window),
            _window_key(key, window - 1),
            expire_after=_TTL,
            delta=unsynced[window],
        )
        if both is not None:
            return both
    return await shared.run(_count, key, window, unsynced)


def decide(current: int, previous: int, limit: int, now: float) -> Decision:
    elapsed = (now % WINDOW_SECONDS) / WINDOW_SECONDS
    estimate = previous * (1 - elapsed) + current
    if estimate <= limit:
        return Decision(True)
    # Seconds until the weighted count falls back under the limit.
    wait = (1 - elapsed) * WINDOW_SECONDS
    if previous and current <= limit:
        wait = max(0.0, (previous + current - limit) / previous - elapsed) * WINDOW_SECONDS
    return Decision(False, retry_after_ms=max(1, int(wait * 1000)), excess=int(estimate - limit))


class _LocalCounts:
    """This process's requests per client in the current and previous window (bounded:
    older windows are forgotten), and those not yet added to the shared count."""

    def __init__(self) -> None:
        self.window = 0
        self.current: dict[str, int] = {}
        self.previous: dict[str, int] = {}
        self.unsynced: dict[str, dict[int, int]] = {}

    def add(self, key: str, window: int) -> tuple[int, int]:
        """Count one request locally; (this window's count, previous one's)."""
        if window != self.window:
            self.previous = self.current if window == self.window + 1 else {}
            self.current = {}
            self.unsynced = {
                k: kept
                for k, by_window in self.unsynced.items()
                if (kept := {w: n for w, n in by_window.items() if w >= window - 1})
            }
            self.window = window
        count = self.current.get(key, 0) + 1
        self.current[key] = count
        by_window = self.unsynced.setdefault(key, {})
        by_window[window] = by_window.get(window, 0) + 1
        return count, self.previous.get(key, 0)

    def take_unsynced(self, key: str) -> dict[int, int]:
        return self.unsynced.pop(key, {})

    def pending(self, key: str, window: int) -> int:
        """This process's requests for ``key`` in ``window`` not yet in the shared count."""
        return self.unsynced.get(key, {}).get(window, 0)


_local = _LocalCounts()
#: The shared check in flight per (client, window): (this window's count, previous one's).
_flights: dict[tuple[str, int], asyncio.Task[tuple[int, int]]] = {}


def reset_local() -> None:
    """Forget this process's counts (tests: the shared cache is cleared between them)."""
    global _local
    _local = _LocalCounts()
    _flights.clear()


def _fly(key: str, window: int) -> asyncio.Task[tuple[int, int]]:
    """Start the shared check that adds this process's unshared frames of ``key``. A task of
    its own: a frame whose connection closes meanwhile does not cancel the others' answer."""
    flight = asyncio.ensure_future(_acount(key, window, _local.take_unsynced(key)))
    _flights[(key, window)] = flight
    flight.add_done_callback(lambda done: _landed(key, window, done))
    return flight


def _landed(key: str, window: int, flight: asyncio.Task[tuple[int, int]]) -> None:
    if _flights.get((key, window)) is flight:
        del _flights[(key, window)]
    if flight.cancelled():
        return
    if flight.exception() is not None:  # (retrieved: the frames that waited report it)
        logger.debug("rate-limit check for %s failed", key, exc_info=flight.exception())
        return
    if _local.pending(key, window):
        _fly(key, window)  # frames counted meanwhile: share them now, not at the next frame


async def _shared_counts(key: str, window: int) -> tuple[int, int]:
    """(this window's shared count including this frame, the previous window's)."""
    flight = _flights.get((key, window))
    if flight is None:
        return await asyncio.shield(_fly(key, window))
    ahead = _local.pending(key, window)  # not in the flight: this frame and those before it
    current, previous = await asyncio.shield(flight)
    return current + ahead, previous


async def hit(key: str, limit: int, *, now: float | None = None) -> Decision:
    """Count one request for ``key`` and say whether it is within ``limit`` per minute."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    local = decide(*_local.add(key, window), limit, now)
    if shared.is_local():  # no other process: this process's counts are all there is
        _local.take_unsynced(key)
        return local
    if not local.allowed and local.excess <= limit:
        return local  # refused on this process's counts alone: shared later
    if not local.allowed:  # sustained abuse (the caller closes 4029): shared now
        await _acount(key, window, _local.take_unsynced(key))
        return local
    return decide(*await _shared_counts(key, window), limit, now)
