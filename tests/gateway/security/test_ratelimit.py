"""Every inbound frame counts against the rate limit, parseable or not (issue 9, item 2),
and a flood is refused on this process's own counts without a cache trip per frame.

On the embedded default and on real Redis; the flood against real servers (uvicorn and
daphne) is in tests/gateway/test_e2e_abuse.py.
"""

from __future__ import annotations

import time
import uuid

import pytest

from gateway.protocol.errors import CloseCode
from gateway.security import ratelimit
from gateway.state import cache as shared

LIMIT = 3
#: Frames a client may send that are not a request object: each gets INVALID_REQUEST.
GARBAGE: dict[str, str | bytes] = {
    "not-json": "this is not json",
    "empty": "",
    "binary-not-utf8": b"\xff\xfe\x00",
    "binary-json-not-object": b"[1]",
    "array": "[1, 2]",
    "number": "42",
    "truncated": '{"type": "req", "id": "x"',
}


@pytest.mark.parametrize("kind", list(GARBAGE))
async def test_unparseable_frames_count_against_the_rate_limit(clients, wingman_policy, kind):
    wingman_policy(rate_limit_per_minute=LIMIT)
    c = clients()
    await c.handshake()
    for _ in range(LIMIT):
        await c.send(GARBAGE[kind])
        assert (await c.recv_res())["error"]["code"] == "INVALID_REQUEST"
    await c.send(GARBAGE[kind])
    refused = (await c.recv_res())["error"]
    assert refused["code"] == "RATE_LIMITED", f"{kind} frames were not counted: {refused}"
    assert refused["retryAfterMs"] > 0
    assert (await c.call("ping"))["error"]["code"] == "RATE_LIMITED"
    for _ in range(2 * LIMIT):  # sustained: closed 4029 as for valid frames
        await c.send(GARBAGE[kind])
    assert await c.expect_close() == CloseCode.RATE_LIMITED


def _shared_count(key: str, now: float) -> int:
    window = int(now // ratelimit.WINDOW_SECONDS)
    return shared.counter(f"gw:rl:{key}:{window}")


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_locally_refused_frames_are_shared_when_the_client_is_closed(backend):
    key, limit = f"client-{uuid.uuid4().hex}", 5
    now = (time.time() // 60) * 60 + 1  # early in a window: the previous one weighs ~nothing
    for _ in range(limit):
        assert (await ratelimit.hit(key, limit, now=now)).allowed
    assert _shared_count(key, now) == limit
    for _ in range(limit):
        decision = await ratelimit.hit(key, limit, now=now)
        assert not decision.allowed and decision.excess <= limit
    # refused on this process's own counts: the shared cache was not written per frame
    assert _shared_count(key, now) == limit
    abuse = await ratelimit.hit(key, limit, now=now)
    assert abuse.excess > limit, abuse  # the caller closes 4029 ...
    assert _shared_count(key, now) == 2 * limit + 1  # ... and every frame is shared now
    ratelimit.reset_local()  # another process: no local counts, the shared ones refuse
    assert not (await ratelimit.hit(key, limit, now=now)).allowed


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
async def test_on_local_memory_the_counts_stay_local(backend):
    """Embedded (one process, the cache is its own memory): the same decisions, and not a
    cache write per frame."""
    assert shared.is_local()
    key, limit = f"client-{uuid.uuid4().hex}", 5
    now = (time.time() // 60) * 60 + 1
    for _ in range(limit):
        assert (await ratelimit.hit(key, limit, now=now)).allowed
    for _ in range(limit):
        decision = await ratelimit.hit(key, limit, now=now)
        assert not decision.allowed and decision.excess <= limit
    assert (await ratelimit.hit(key, limit, now=now)).excess > limit  # closed 4029
    assert _shared_count(key, now) == 0
    assert ratelimit._local.unsynced == {}
    next_window = now + ratelimit.WINDOW_SECONDS  # the previous one still weighs ~98%
    assert not (await ratelimit.hit(key, limit, now=next_window)).allowed
    assert (await ratelimit.hit(key, limit, now=now + 2 * ratelimit.WINDOW_SECONDS)).allowed


async def test_local_counts_keep_only_two_windows(backend):
    now = (time.time() // 60) * 60 + 1
    for i in range(500):
        await ratelimit.hit(f"many-{i}", 100, now=now)
    await ratelimit.hit("later", 100, now=now + 2 * ratelimit.WINDOW_SECONDS)
    local = ratelimit._local
    assert len(local.current) + len(local.previous) + len(local.unsynced) <= 2


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_shared_check_is_one_script_with_the_counts_of_both_windows(backend):
    """On Redis the usual check (only this window's requests to share) adds them and reads
    the previous window's count in one script: the same counts as ``incr`` + ``counter``,
    and a new window key expires."""
    from django.core.cache import cache

    key, now = f"client-{uuid.uuid4().hex}", time.time()
    window = int(now // ratelimit.WINDOW_SECONDS)
    previous = f"gw:rl:{key}:{window - 1}"
    shared.incr(previous, timeout=60, delta=7)
    assert shared.incr_and_read(f"gw:rl:{key}:{window}", previous, timeout=60, delta=2) == (2, 7)
    assert await shared.run(ratelimit._count, key, window, {window: 3}) == (5, 7)
    assert _shared_count(key, now) == 5
    full = cache.make_and_validate_key(f"gw:rl:{key}:{window}")
    assert 0 < cache._cache.get_client(full).pttl(full) <= 60_000
    assert shared.incr_and_read("gw:rl:absent:1", f"gw:rl:absent:{window}", timeout=5, delta=1) == (
        1,
        0,
    )
