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

On a shared cache one check is in flight in this process at a time, for all its clients (a
Redis script from the event loop): it adds every frame this process has not shared yet, of
every client, and reads those clients' counts. A process's clients cost one script per round
trip, not one each: in a room swarm of 1000 nodes (``wingman gateway bench --mode rooms``,
two gateways), a script per broadcast was a quarter of each gateway's samples in a profile
(``py-spy --gil``), ~12% after.

A frame of a client near its limit waits for a check: for the one in flight if its client is
in it, else for the next, which leaves as soon as this one lands with every frame counted
meanwhile. It is decided on its client's count as the check returned it, less this process's
frames of that client that came after it and were in the check, plus those before it that
were not: each such decision counts every frame this process had seen before it and every
frame the others had shared by then.

A frame of a client far from its limit does not wait: while the client's count as a check
returned it at most ``FRESH_SECONDS`` (2 s) ago, plus this process's frames since, is at
most half the limit, the frame is allowed at once and shared by a check leaving within
``SHARE_SECONDS`` (20 ms). What such a decision does not see is what other processes counted
for that client since that check; the half it keeps in reserve is for that, and from half
the limit on every frame waits. In that swarm at 8,400 deliveries/s, waiting for a check was
most of the p99 latency (107 and 45 ms in two runs, 18 and 30 ms without a rate limit) and
checks back to back a sixth of the gateways' CPU.

While Redis is known to be down (:data:`gateway.state.outage.redis_state`) every frame waits
for a check, so a request gets ``UNAVAILABLE`` as any other that needs Redis. A check that
fails marks the outage even when no frame waited for it; until one does (at once for a
refused connection, after ``WINGMAN_REDIS_TIMEOUT_SECONDS`` for a Redis that hangs), a
client far from its limit may still get answers that need nothing else from Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from gateway.state import cache as shared
from gateway.state import outage

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_TTL = WINDOW_SECONDS * 2 + 5
#: A frame is decided without waiting for a check while its client's shared count, as a
#: check returned it at most this long ago plus this process's frames since, is at most
#: half the limit (:meth:`_LocalCounts.known_count`).
FRESH_SECONDS = 2.0
#: Frames decided that way are shared by a check leaving this long after them at most
#: (with frames that wait, or still unshared when a check lands: at once).
SHARE_SECONDS = 0.02

#: (client key, window number)
Slot = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_ms: int = 0
    #: How far over the limit this client is (0 when allowed): sustained abuse closes 4029.
    excess: int = 0


def _window_key(key: str, window: int) -> str:
    return f"gw:rl:{key}:{window}"


def _count_many(increments: dict[str, int], reads: list[str]) -> dict[str, int]:
    """:func:`shared.aincr_many` on a cache without it: a cache call per counter (sync)."""
    values = {
        name: shared.incr(name, timeout=_TTL, delta=n).value for name, n in increments.items()
    }
    return values | {name: shared.counter(name) for name in reads}


async def _acount_many(increments: dict[Slot, int]) -> dict[Slot, tuple[int, int]]:
    """Add each (client, window)'s frames to its shared count; each one's count then, and
    its previous window's. On Redis one script from the event loop (no thread hop)."""
    reads = sorted({(key, window - 1) for key, window in increments} - increments.keys())
    adds = {_window_key(*slot): n for slot, n in increments.items()}
    names = [_window_key(*slot) for slot in reads]
    values = await shared.aincr_many(adds, names, expire_after=_TTL)
    if values is None:
        values = await shared.run(_count_many, adds, names)
    return {
        (key, window): (values[_window_key(key, window)], values[_window_key(key, window - 1)])
        for key, window in increments
    }


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
        #: (client, window) -> (shared count, this process's count, previous window's
        #: shared count, monotonic time): what the last check of it returned, and when
        self.known: dict[Slot, tuple[int, int, int, float]] = {}

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
            self.known = {}
            self.window = window
        count = self.current.get(key, 0) + 1
        self.current[key] = count
        by_window = self.unsynced.setdefault(key, {})
        by_window[window] = by_window.get(window, 0) + 1
        return count, self.previous.get(key, 0)

    def seen(self, key: str, window: int) -> int:
        """This process's requests for ``key`` in ``window`` so far (shared or not)."""
        if window == self.window:
            return self.current.get(key, 0)
        return self.previous.get(key, 0) if window == self.window - 1 else 0

    def learn(self, check: _Check) -> None:
        """Remember the counts a landed check returned (for :meth:`known_count`)."""
        at = time.monotonic()
        for (key, window), (current, previous) in check.task.result().items():
            if window == self.window:
                self.known[key, window] = (current, check.seen[key, window], previous, at)

    def known_count(self, key: str, window: int, seen: int) -> tuple[int, int] | None:
        """(this window's shared count as a check returned it at most ``FRESH_SECONDS``
        ago, plus this process's frames since: the ``seen``-th is one; the previous
        window's), or None when no check of it is that recent."""
        known = self.known.get((key, window))
        if known is None or time.monotonic() - known[3] > FRESH_SECONDS:
            return None
        current, seen_then, previous, _ = known
        return current + seen - seen_then, previous

    def take_unsynced(self, key: str) -> dict[int, int]:
        return self.unsynced.pop(key, {})

    def take_all(self) -> tuple[dict[Slot, int], dict[Slot, int]]:
        """Every client's requests not yet shared, per (client, window), and how many this
        process has seen in each of those (client, window) so far."""
        taken = {(k, w): n for k, by_window in self.unsynced.items() for w, n in by_window.items()}
        self.unsynced = {}
        return taken, {slot: self.seen(*slot) for slot in taken}


class _Check:
    """One shared check: the requests it shares, and this process's count of each (client,
    window) when it took them (its requests up to there are in the counts it returns)."""

    def __init__(self, increments: dict[Slot, int], seen: dict[Slot, int]) -> None:
        self.seen = seen
        self.task = asyncio.ensure_future(_acount_many(increments))


class _Checks:
    """An event loop's check in flight, and the next one's boarding (its future: the
    frames not in the check in flight wait on it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.flying: _Check | None = None
        self.boarding: asyncio.Future[_Check] | None = None
        #: a launch due in ``SHARE_SECONDS`` (frames decided without waiting, to share)
        self.timer: asyncio.TimerHandle | None = None

    def launch(self) -> _Check:
        """A check of everything not shared yet, in flight from now."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        check = self.flying = _Check(*_local.take_all())
        check.task.add_done_callback(lambda _: self._landed(check))
        return check

    def _landed(self, check: _Check) -> None:
        if self.flying is check:
            self.flying = None
        waiting, self.boarding = self.boarding, None
        if check.task.cancelled():  # (its loop is closing)
            if waiting is not None:
                waiting.cancel()
            return
        if (failure := check.task.exception()) is not None:  # (retrieved: waiters report it)
            if outage.is_outage(failure):  # (even with none waiting: no frame skips a check)
                outage.redis_state.failed(failure, "sharing rate-limit counts")
            else:
                logger.debug("rate-limit check failed", exc_info=failure)
        else:
            _local.learn(check)
        if waiting is not None:  # frames waiting for the next check: it leaves now
            following = self.launch()
            if not waiting.done():
                waiting.set_result(following)
        elif _local.unsynced:  # frames counted meanwhile, decided already: shared soon
            self.share_soon()

    def share_soon(self) -> None:
        """Launch a check within ``SHARE_SECONDS`` (unless one flies: it does on landing)."""
        if self.flying is None and self.timer is None:
            self.timer = self.loop.call_later(SHARE_SECONDS, self._share)

    def _share(self) -> None:
        self.timer = None
        if self.flying is None and _local.unsynced:
            self.launch()

    def idle(self) -> bool:
        """Nothing in flight or due: every frame counted here is in the shared counts."""
        return self.flying is None and self.timer is None

    async def board(self) -> _Check:
        """The check that takes this process's requests not shared yet: one leaving now if
        none is in flight, else the next (it leaves when the one in flight lands)."""
        if self.flying is None:
            return self.launch()
        if self.boarding is None:
            self.boarding = self.loop.create_future()
        return await asyncio.shield(self.boarding)


_local = _LocalCounts()
#: The event loop's checks, for the loop they belong to (one loop serves the frames; tests
#: run a loop each).
_checks: _Checks | None = None


def reset_local() -> None:
    """Forget this process's counts (tests: the shared cache is cleared between them)."""
    global _local, _checks
    _local = _LocalCounts()
    _checks = None


def checks() -> _Checks:
    """The running event loop's checks."""
    global _checks
    loop = asyncio.get_running_loop()
    mine = _checks
    if mine is None or mine.loop is not loop:
        mine = _checks = _Checks(loop)
    return mine


async def _shared_counts(key: str, window: int, seen: int) -> tuple[int, int]:
    """(this window's shared count up to this frame, the ``seen``-th of its client here in
    this window; the previous window's)."""
    slot, mine = (key, window), checks()
    check = mine.flying
    while check is None or slot not in check.seen:
        check = await mine.board()
    counts = await asyncio.shield(check.task)
    current, previous = counts[slot]
    return current + seen - check.seen[slot], previous


async def hit(key: str, limit: int, *, now: float | None = None) -> Decision:
    """Count one request for ``key`` and say whether it is within ``limit`` per minute."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    current, previous = _local.add(key, window)
    local = decide(current, previous, limit, now)
    if shared.is_local():  # no other process: this process's counts are all there is
        _local.take_unsynced(key)
        return local
    if not local.allowed and local.excess <= limit:
        return local  # refused on this process's counts alone: shared later
    if not local.allowed:  # sustained abuse (the caller closes 4029): shared now
        await asyncio.shield((await checks().board()).task)
        return local
    known = None if outage.redis_state.down else _local.known_count(key, window, current)
    if known is not None and decide(*known, limit // 2, now).allowed:
        checks().share_soon()  # far from the limit: decided now, shared within 20 ms
        return Decision(True)
    return decide(*await _shared_counts(key, window, current), limit, now)
