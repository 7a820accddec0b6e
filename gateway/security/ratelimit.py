"""Per-client request rate limit, shared between processes through Django's cache.

A sliding-window approximation over two fixed one-minute windows (the previous window's
count weighted by how much of it still overlaps). Keyed by the client's identity, not the
socket, so reconnecting does not reset it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

from gateway.state import cache as shared

WINDOW_SECONDS = 60
_TTL = WINDOW_SECONDS * 2 + 5


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_ms: int = 0
    #: How far over the limit this client is (0 when allowed): sustained abuse closes 4029.
    excess: int = 0


def _count(key: str, now: float) -> tuple[int, int]:
    """Add one request; (this window's count, previous window's count)."""
    window = int(now // WINDOW_SECONDS)
    cur_key = f"gw:rl:{key}:{window}"
    cache.add(cur_key, 0, timeout=_TTL)
    try:
        current = cache.incr(cur_key)
    except ValueError:  # expired between add and incr
        cache.set(cur_key, 1, timeout=_TTL)
        current = 1
    return current, cache.get(f"gw:rl:{key}:{window - 1}", 0)


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


async def hit(key: str, limit: int, *, now: float | None = None) -> Decision:
    """Count one request for ``key`` and say whether it is within ``limit`` per minute."""
    now = time.time() if now is None else now
    current, previous = await shared.run(_count, key, now)
    return decide(current, previous, limit, now)
