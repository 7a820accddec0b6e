"""Every inbound frame counts against the rate limit, parseable or not (issue 9, item 2),
and a flood is refused on this process's own counts without a cache trip per frame.

On the embedded default and on real Redis; the flood against real servers (uvicorn and
daphne) is in tests/gateway/test_e2e_abuse.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from gateway.protocol.errors import CloseCode
from gateway.security import ratelimit
from gateway.state import cache as shared
from gateway.state import outage
from tests.conftest import REDIS_URL
from tests.gateway.gateway_process import free_port

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
    """On Redis a check adds every client's requests and reads each one's previous window
    in one script, from the event loop: the same counts as ``incr`` + ``counter``, and a
    new window key expires."""
    from django.core.cache import cache

    a, b, now = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}", time.time()
    window = int(now // ratelimit.WINDOW_SECONDS)
    shared.incr(f"gw:rl:{a}:{window - 1}", timeout=60, delta=7)
    current = f"gw:rl:{a}:{window}"
    assert await shared.aincr_many({current: 2}, [f"gw:rl:{a}:{window - 1}"], expire_after=60) == {
        current: 2,
        f"gw:rl:{a}:{window - 1}": 7,
    }
    # the general (sync) path gives the same counts
    assert await shared.run(ratelimit._count_many, {current: 3}, []) == {current: 5}
    assert _shared_count(a, now) == 5
    counts = await ratelimit._acount_many({(a, window): 4, (b, window): 1})
    assert counts == {(a, window): (9, 7), (b, window): (1, 0)}
    both = await ratelimit._acount_many({(a, window - 1): 1, (a, window): 1})
    assert both == {(a, window - 1): (8, 0), (a, window): (10, 8)}
    assert _shared_count(a, now) == 10
    full = cache.make_and_validate_key(current)
    assert 0 < cache._cache.get_client(full).pttl(full) <= 60_000
    absent = f"gw:rl:absent-{uuid.uuid4().hex}"
    assert await shared.aincr_many({absent: 1}, [f"{absent}:0"], expire_after=5) == {
        absent: 1,
        f"{absent}:0": 0,
    }


@contextlib.contextmanager
def redis_commands_naming(text: str) -> Iterator[list[str]]:
    """The commands the Redis server executes meanwhile whose arguments contain ``text``
    (its MONITOR feed, read in a thread until an ECHO of a marker comes through it)."""
    seen: list[str] = []
    marker = f"end-of-watch-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    monitor = client.monitor().__enter__()  # (it has read MONITOR's "OK": the feed is on)

    def read() -> None:
        while marker not in (command := monitor.next_command()["command"]):
            if text in command:
                seen.append(command)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        client.echo(marker)
        reader.join(10)
        monitor.__exit__(None, None, None)
        client.close()
    assert not reader.is_alive(), "the MONITOR feed did not show the marker"


async def _landed() -> None:
    for _ in range(200):  # the follow-up check of the frames that waited or did not
        if ratelimit.checks().idle():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"a check still in flight or due: {ratelimit.checks().flying}")


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_frames_of_one_client_arriving_together_share_one_check(backend):
    """50 frames of one client at once (50 connections of one address): one check in
    flight at a time, not 50 round trips; every frame is in the shared count after."""
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    with redis_commands_naming(key) as commands:
        decisions = await asyncio.gather(*(ratelimit.hit(key, 100, now=now) for _ in range(50)))
        await _landed()
    assert all(d.allowed for d in decisions)
    assert _shared_count(key, now) == 50
    scripts = [c for c in commands if c.startswith("EVAL")]
    assert 1 <= len(scripts) <= 3, commands  # the first frame's, then the others' together


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_frames_that_wait_for_a_check_are_decided_on_every_count_before_them(backend):
    """Another process has shared 6 of a limit of 10: of 10 frames arriving together here
    exactly 4 are allowed, the first 4, though 9 of them waited for the first one's check."""
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    shared.incr(f"gw:rl:{key}:{int(now // 60)}", timeout=120, delta=6)  # the other process
    decisions = await asyncio.gather(*(ratelimit.hit(key, 10, now=now) for _ in range(10)))
    assert [d.allowed for d in decisions] == [True] * 4 + [False] * 6
    await _landed()
    assert _shared_count(key, now) == 16
    assert not (await ratelimit.hit(key, 10, now=now)).allowed


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_frames_of_many_clients_share_one_check_per_round_trip(backend):
    """200 clients' frames at once (a swarm of nodes, each its own client): one script in
    flight at a time for all of them, not one each; each is in its own shared count after."""
    run, now = uuid.uuid4().hex, (time.time() // 60) * 60 + 1
    keys = [f"{run}-{i}" for i in range(200)]
    with redis_commands_naming(run) as commands:
        decisions = await asyncio.gather(*(ratelimit.hit(key, 100, now=now) for key in keys))
        await _landed()
    assert all(d.allowed for d in decisions)
    assert [_shared_count(key, now) for key in keys] == [1] * 200
    scripts = [c for c in commands if c.startswith("EVAL")]
    assert 1 <= len(scripts) <= 3, len(scripts)  # the first frame's, then the others' together


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_frames_boarding_the_next_check_are_decided_in_their_order(backend):
    """Another process has shared 6 of client A's limit of 10. Client B's frame starts a
    check; A's 10 frames, arriving while it flies, wait for the next one (all 10 in it):
    exactly the first 4 are allowed, on A's count less A's frames after each of them."""
    a, b, now = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    shared.incr(f"gw:rl:{a}:{int(now // 60)}", timeout=120, delta=6)  # the other process
    first = asyncio.ensure_future(ratelimit.hit(b, 10, now=now))
    await asyncio.sleep(0)  # B's check is in flight
    assert ratelimit.checks().flying is not None
    decisions = await asyncio.gather(*(ratelimit.hit(a, 10, now=now) for _ in range(10)))
    assert (await first).allowed
    assert [d.allowed for d in decisions] == [True] * 4 + [False] * 6
    await _landed()
    assert (_shared_count(a, now), _shared_count(b, now)) == (16, 1)


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_frame_whose_connection_closes_does_not_cancel_the_others_check(backend):
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    first = asyncio.ensure_future(ratelimit.hit(key, 100, now=now))
    await asyncio.sleep(0)  # its check is in flight
    second = asyncio.ensure_future(ratelimit.hit(key, 100, now=now))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).allowed
    await _landed()
    assert _shared_count(key, now) == 2


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_client_far_from_its_limit_is_decided_without_waiting(backend):
    """Once a check has returned a client's count, its frames are allowed at once while
    that count plus this process's frames since is at most half the limit; they are shared
    by a check within SHARE_SECONDS, none lost."""
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    assert (await ratelimit.hit(key, 100, now=now)).allowed  # no count known: it waited
    assert _shared_count(key, now) == 1
    decisions = [await ratelimit.hit(key, 100, now=now) for _ in range(10)]
    assert all(d.allowed for d in decisions)
    assert _shared_count(key, now) == 1  # decided before any check shared them
    assert ratelimit.checks().timer is not None
    await _landed()
    assert _shared_count(key, now) == 11


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_from_half_the_limit_frames_wait_for_the_shared_count(backend):
    """Limit 10; another process has shared 3. Here: the first frame waits (count 4), the
    second does not (4 + 1 <= 5). The other process then shares 4 more: the third frame,
    over half the limit on what this process knows, waits and is decided on all of them
    (10: allowed); the fourth is refused."""
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    other = f"gw:rl:{key}:{int(now // 60)}"
    shared.incr(other, timeout=120, delta=3)
    first = await ratelimit.hit(key, 10, now=now)
    second = await ratelimit.hit(key, 10, now=now)
    assert _shared_count(key, now) == 4  # the second was not shared yet
    shared.incr(other, timeout=120, delta=4)
    third = await ratelimit.hit(key, 10, now=now)
    assert _shared_count(key, now) == 10  # it waited: the second and third are shared
    fourth = await ratelimit.hit(key, 10, now=now)
    assert [d.allowed for d in (first, second, third, fourth)] == [True, True, True, False]
    await _landed()
    assert _shared_count(key, now) == 11


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_count_older_than_fresh_seconds_is_checked_again(backend, monkeypatch):
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    assert (await ratelimit.hit(key, 100, now=now)).allowed
    monkeypatch.setattr(ratelimit, "FRESH_SECONDS", 0.0)
    assert (await ratelimit.hit(key, 100, now=now)).allowed
    assert _shared_count(key, now) == 2  # it waited for its check


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_while_redis_is_known_down_every_frame_waits_for_its_check(backend, monkeypatch):
    """A fresh count far from the limit does not skip the check during an outage: the
    frame's request needs Redis like any other (it gets UNAVAILABLE when the check fails)."""
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    assert (await ratelimit.hit(key, 100, now=now)).allowed
    monkeypatch.setattr(outage.redis_state, "down_since", time.monotonic())
    assert (await ratelimit.hit(key, 100, now=now)).allowed
    assert _shared_count(key, now) == 2  # it waited for its check


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_failed_check_nobody_waited_for_marks_the_outage(backend, settings, monkeypatch):
    """Redis goes away (here: the cache now names a port nobody listens on) while a client
    has a fresh count. Its next frame is decided without waiting; the check sharing it
    fails, which marks the outage though no frame waited for it; the frame after that
    waits for its check and gets the outage error (the caller answers UNAVAILABLE)."""
    monkeypatch.setattr(outage.redis_state, "down_since", None)
    monkeypatch.setattr(outage.redis_state, "last_reason", "")
    key, now = f"client-{uuid.uuid4().hex}", (time.time() // 60) * 60 + 1
    assert (await ratelimit.hit(key, 100, now=now)).allowed
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": dict(settings.REDIS_POOL_OPTIONS),
        }
    }
    assert (await ratelimit.hit(key, 100, now=now)).allowed
    assert not outage.redis_state.down
    await _landed()
    assert outage.redis_state.down, "the failed check did not mark the outage"
    with pytest.raises(redis.exceptions.ConnectionError):
        await ratelimit.hit(key, 100, now=now)
