"""Per-client request rate limit, shared between processes through Django's cache.

A sliding-window approximation over two fixed one-minute windows (the previous window's
count weighted by how much of it still overlaps). Keyed by the client's identity, not the
socket, so reconnecting does not reset it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_ms: int = 0
    #: How far over the limit this client is (0 when allowed): sustained abuse closes 4029.
    excess: int = 0


async def hit(key: str, limit: int, *, now: float | None = None) -> Decision:
    """Count one request for ``key`` and say whether it is within ``limit`` per minute."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    cur_key = f"gw:rl:{key}:{window}"
    prev_key = f"gw:rl:{key}:{window - 1}"
    await cache.aadd(cur_key, 0, timeout=WINDOW_SECONDS * 2 + 5)
    try:
        current = await cache.aincr(cur_key)
    except ValueError:
        await cache.aset(cur_key, 1, timeout=WINDOW_SECONDS * 2 + 5)
        current = 1
    previous = await cache.aget(prev_key, 0)
    elapsed = (now % WINDOW_SECONDS) / WINDOW_SECONDS
    estimate = previous * (1 - elapsed) + current
    if estimate <= limit:
        return Decision(True)
    # Time until the weighted count drops back under the limit.
    if previous:
        needed = (previous + current - limit) / previous
        wait = max(0.0, needed - elapsed) * WINDOW_SECONDS if needed <= 1 else None
    else:
        wait = None
    if wait is None:
        wait = (1 - elapsed) * WINDOW_SECONDS
    return Decision(False, retry_after_ms=max(1, int(wait * 1000)), excess=int(estimate - limit))
