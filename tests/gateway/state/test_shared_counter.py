"""The shared counter behind the rate limit and the auth lockout (``gateway.shared.incr``):
atomic, with an explicit expiry set in the same step, on the embedded cache and on real
Redis (Django's own ``aincr`` resets the key to the 300 s default: design/reliability.md #9).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from gateway.state import cache as shared


def _key() -> str:
    return f"test:counter:{uuid.uuid4().hex}"


def test_counter_expires_after_its_explicit_timeout(backend):
    key = _key()
    assert shared.incr(key, timeout=1).value == 1
    second = shared.incr(key, timeout=1)
    assert second.value == 2 and 0 < second.ttl_ms <= 1000, second
    time.sleep(0.5)
    assert shared.counter(key) == 2
    time.sleep(0.8)
    assert shared.counter(key) == 0, "the counter outlived its timeout"


def test_counter_restarts_its_clock_when_it_reaches_refresh_at(backend):
    key = _key()
    shared.incr(key, timeout=1, refresh_at=3)
    shared.incr(key, timeout=1, refresh_at=3)
    time.sleep(0.6)
    third = shared.incr(key, timeout=1, refresh_at=3)
    assert third.value == 3 and third.ttl_ms > 900, third
    time.sleep(0.6)  # 1.2 s after the first: alive only because the third restarted it
    assert shared.counter(key) == 3
    fourth = shared.incr(key, timeout=1, refresh_at=3)
    assert fourth.value == 4 and fourth.ttl_ms < 500, "only reaching refresh_at restarts it"
    time.sleep(0.6)
    assert shared.counter(key) == 0


def test_counter_is_deleted_at_zero_and_never_negative(backend):
    key = _key()
    shared.incr(key, timeout=60)
    assert shared.incr(key, timeout=60, delta=-1).value == 0
    assert shared.counter(key) == 0
    assert shared.incr(key, timeout=60, delta=-1).value == 0
    assert shared.incr(key, timeout=60).value == 1


def test_counter_is_atomic_under_concurrency(backend):
    key = _key()
    with ThreadPoolExecutor(max_workers=32) as pool:
        values = list(pool.map(lambda _: shared.incr(key, timeout=60).value, range(200)))
    assert sorted(values) == list(range(1, 201))
