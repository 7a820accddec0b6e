"""Calling Django's cache from the event loop without needless thread hops, and counters.

Django's async cache methods wrap the sync ones in ``sync_to_async`` — a thread hop per
call (~0.1-0.3 ms each; a rate-limit check makes three). The local-memory cache never
blocks, so it is called directly; a networked cache (Redis) runs a whole multi-step
operation in ONE worker-thread hop instead of one per step.

:func:`incr` is the one way to count in the cache (rate limit, auth lockout): Django's own
counters are not fit for it (design/reliability.md #9, measured here on LocMemCache and
RedisCache): ``aincr`` is a get-then-set that resets the key to the default 300 s timeout,
``add(key, 0)`` without a timeout takes that default too, and ``RedisCache.incr`` is
EXISTS-then-INCR, which re-creates a key that expired in between with no expiry at all.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.dispatch import receiver

P = ParamSpec("P")
T = TypeVar("T")


async def run(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a sync function that only talks to the cache."""
    if is_local():
        return func(*args, **kwargs)
    return await sync_to_async(func, thread_sensitive=False)(*args, **kwargs)


#: Is the default cache this process's memory? Asked on every frame (rate limit) and cache
#: step, and ``caches["default"]`` is a thread-local lookup (~4% of the gateway's CPU per
#: invoke round trip): decided once, and again after the ``CACHES`` setting changes (tests).
_local: bool | None = None


def is_local() -> bool:
    """Is the default cache this process's own memory (not shared with other processes)?"""
    global _local
    known = _local
    if known is None:
        known = _local = isinstance(caches["default"], LocMemCache)
    return known


@receiver(setting_changed)
def _caches_changed(*, setting: str, **kwargs) -> None:
    global _local
    if setting == "CACHES":
        _local = None


# counters --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Count:
    """A counter's value after :func:`incr`, and how long until it expires."""

    value: int
    ttl_ms: int


#: INCRBY with the expiry set in the same atomic step: when the key is new (it has no
#: expiry yet) and when an increment reaches ARGV[3]; a count at or below 0 is deleted.
_REDIS_INCR = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n <= 0 then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or (tonumber(ARGV[1]) > 0 and n == tonumber(ARGV[3])) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {n, ttl}
"""
_local_lock = threading.Lock()


def incr(key: str, *, timeout: float, delta: int = 1, refresh_at: int = 0, backend=None) -> Count:
    """Add ``delta`` to the counter ``key`` in one atomic step and return it.

    A new counter expires ``timeout`` seconds after its first increment; an increment that
    brings it to exactly ``refresh_at`` (> 0) restarts that clock (a lockout from the Nth
    failure). A counter that falls to 0 or below is deleted. Atomic across processes on
    Redis (one Lua script); on any other cache (local memory) within this process.
    ``backend``: another cache than the default (e.g. a process-local fallback).
    """
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = backend if backend is not None else caches["default"]
    ttl_ms = max(1, int(timeout * 1000))
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        client = backend._cache.get_client(full_key, write=True)
        value, ttl = client.eval(_REDIS_INCR, 1, full_key, delta, ttl_ms, refresh_at)
        return Count(int(value), int(ttl))
    with _local_lock:
        now = time.time()
        value, deadline = backend.get(key) or (0, now + timeout)
        value += delta
        if value <= 0:
            backend.delete(key)
            return Count(0, 0)
        if delta > 0 and value == refresh_at:
            deadline = now + timeout
        remaining = max(deadline - now, 0.001)
        backend.set(key, (value, deadline), timeout=remaining)
        return Count(value, max(1, int(remaining * 1000)))


#: INCRBY each of the first ARGV[1] keys by its delta (ARGV[3..]; a new key gets its expiry,
#: ARGV[2] ms, as in _REDIS_INCR) and read the counters of the other keys, in one round trip:
#: a rate-limit check of every client waiting (each window's count, the one before it). The
#: values come back as one string, "v1,v2,...": one reply to parse, not one per key.
_REDIS_INCR_MANY = """
local out = {}
local n = tonumber(ARGV[1])
for i = 1, n do
  out[i] = redis.call('INCRBY', KEYS[i], ARGV[i + 2])
  if redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
for i = n + 1, #KEYS do
  out[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
return table.concat(out, ',')
"""


#: Per event loop: (the ``CACHES`` setting it was made for, an asyncio client of its Redis).
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[object, object]] = (
    weakref.WeakKeyDictionary()
)


def _async_client(backend):
    """An asyncio Redis client of the default cache's (write) server for the running loop,
    with the cache's pool options (timeouts: a paused Redis fails the call, outage.py)."""
    import redis.asyncio
    import redis.exceptions
    from django.conf import settings
    from redis.backoff import NoBackoff

    loop = asyncio.get_running_loop()
    known = _async_clients.get(loop)
    if known is not None and known[0] is settings.CACHES:
        return known[1]
    options = dict(backend._cache._pool_options)
    options.pop("parser_class", None)  # the sync client's
    options.pop("retry", None)  # the sync class; the same policy as settings.py gives it:
    # once more on a new connection after a Redis restart, never after a timeout
    retry = redis.asyncio.retry.Retry(
        NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)
    )
    client = redis.asyncio.Redis.from_url(backend._cache._servers[0], retry=retry, **options)
    _async_clients[loop] = (settings.CACHES, client)
    return client


async def aincr_many(
    increments: dict[str, int], reads: Sequence[str], *, expire_after: float
) -> dict[str, int] | None:
    """On Redis: add each delta (> 0) to its counter (:func:`incr` without ``refresh_at``)
    and read the counters ``reads``, all in one round trip, on the event loop (an asyncio
    Redis client: no thread hop): every key named, with its value. None on any other cache
    (use :func:`incr` and :func:`counter`)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    client = _async_client(backend)
    ttl_ms = max(1, int(expire_after * 1000))
    names = [*increments, *reads]
    keys = [backend.make_key(name) for name in names]  # (ours: nothing to validate)
    joined = await client.eval(
        _REDIS_INCR_MANY, len(keys), *keys, len(increments), ttl_ms, *increments.values()
    )
    values = map(int, joined.split(b","))
    return dict(zip(names, values, strict=True))


def claim_many(keys: list[str], *, owner: str, timeout: float) -> list[bool]:
    """Take each key for ``owner`` unless another owner holds it (``cache.add(key, owner,
    timeout)``, and a key ``owner`` holds already counts as taken: a message delivered again
    after its worker died takes its own locks again); on Redis in one round trip (a pipeline
    of ``SET NX EX`` and ``GET`` per key). Which of them ``owner`` now holds."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    seconds = backend.get_backend_timeout(timeout)
    if not isinstance(backend, RedisCache) or not seconds:
        return [bool(backend.add(key, owner, timeout)) or backend.get(key) == owner for key in keys]
    stored = backend._cache._serializer.dumps(owner)
    pipe = backend._cache.get_client(write=True).pipeline(transaction=False)
    for key in keys:
        made = backend.make_and_validate_key(key)
        pipe.set(made, stored, ex=seconds, nx=True)
        pipe.get(made)
    answers = pipe.execute()
    return [
        bool(added) or held == stored
        for added, held in zip(answers[::2], answers[1::2], strict=True)
    ]


def counter(key: str) -> int:
    """The current value of a counter kept by :func:`incr` (0 when absent or expired)."""
    from django.core.cache import cache

    value = cache.get(key)
    if isinstance(value, tuple):  # the local-memory form: (value, deadline)
        return value[0]
    return int(value or 0)
