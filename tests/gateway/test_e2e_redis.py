"""End-to-end tests in Redis mode: one gateway on Redis, and two gateway processes sharing
one Redis (presence and rate limits are cluster-wide).

Every test uses its own channel-layer and cache prefixes on a dedicated Redis database and
deletes only its own keys afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from gateway.security import auth
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    ahttp_get,
    connect_params,
    connected,
    scenario_handshake_and_system_methods,
    scenario_presence_between,
    scenario_ticks,
    ws_client,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

E2E_REDIS_URL = os.environ.get("WINGMAN_E2E_REDIS_URL", "redis://127.0.0.1:6379/5")

RedisGateway = Callable[..., GatewayProcess]


def _keys(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(E2E_REDIS_URL, socket_timeout=5)
    try:
        return list(client.scan_iter(match=f"*{prefix}*", count=1000))
    finally:
        client.close()


def _delete_keys(prefix: str) -> None:
    delete_redis_prefix(prefix, E2E_REDIS_URL)


@pytest.fixture
def redis_prefix() -> str:
    return f"wme2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_gateway(gateway_factory: GatewayFactory, redis_prefix: str) -> Iterator[RedisGateway]:
    """``make(extra_env=None, *, start=True)`` → a gateway on the shared test Redis.

    All gateways of one test share the prefixes (they form one cluster); the gateways are
    stopped before the test's keys are deleted.
    """
    require_redis()
    env = {
        "REDIS_URL": E2E_REDIS_URL,
        "WINGMAN_CHANNEL_PREFIX": f"{redis_prefix}-ch",
        "WINGMAN_CACHE_PREFIX": f"{redis_prefix}-cache",
        "WINGMAN_RUN_EXECUTOR": "local",  # no worker here: the gateways execute their runs
    }
    made: list[GatewayProcess] = []

    def make(extra_env: dict[str, str] | None = None, *, start: bool = True) -> GatewayProcess:
        gw = gateway_factory(
            {**env, **(extra_env or {})}, name=f"redis-gw{len(made) + 1}", start=start
        )
        made.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in made:
            gw.stop()
        _delete_keys(redis_prefix)


async def _start_all(*gateways: GatewayProcess) -> None:
    await asyncio.gather(*(gw.astart() for gw in gateways))


async def test_redis_handshake_and_system_methods(
    redis_gateway: RedisGateway, redis_prefix: str
) -> None:
    gw = redis_gateway()
    health = await scenario_handshake_and_system_methods(gw)
    assert health["channelLayer"] == "redis", health
    assert _keys(f"{redis_prefix}-cache"), "no cache keys under this test's prefix in Redis"


async def test_redis_ticks(redis_gateway: RedisGateway) -> None:
    gw = redis_gateway({"WINGMAN_TICK_INTERVAL_MS": "300"})
    await scenario_ticks(gw, 300)


async def test_redis_presence_between_two_clients(redis_gateway: RedisGateway) -> None:
    gw = redis_gateway()
    await scenario_presence_between(gw, gw)


async def test_two_processes_share_presence(redis_gateway: RedisGateway) -> None:
    """A on process 1 sees B (process 2) connect and leave; system-presence on 1 lists B."""
    gw1, gw2 = redis_gateway(start=False), redis_gateway(start=False)
    await _start_all(gw1, gw2)
    assert gw1.port != gw2.port
    await scenario_presence_between(gw1, gw2)


async def test_two_processes_share_the_rate_limit(redis_gateway: RedisGateway) -> None:
    limit = {"WINGMAN_RATE_LIMIT": "5"}
    gw1, gw2 = redis_gateway(limit, start=False), redis_gateway(limit, start=False)
    await _start_all(gw1, gw2)
    instance = f"shared-{uuid.uuid4()}"
    async with connected(gw1, name="on-1", instance_id=instance) as c1:
        for i in range(3):
            assert (await c1.call("ping", {}))["ok"] is True, f"request {i + 1} refused"
    async with connected(gw2, name="on-2", instance_id=instance) as c2:
        for i in range(2):
            assert (await c2.call("ping", {}))["ok"] is True, f"request {i + 4} refused"
        err = await c2.error("ping", {})
        assert err["code"] == "RATE_LIMITED", (
            f"6th request across two processes was not limited: {err}"
        )
        assert err["retryAfterMs"] > 0, err
    async with connected(gw2, name="other", instance_id=f"other-{uuid.uuid4()}") as c3:
        await c3.ping_ok()


async def test_two_processes_share_the_auth_lockout(redis_gateway: RedisGateway) -> None:
    """200 concurrent wrong secrets (WebSocket and /api/, on both processes): at most
    MAX_FAILURES of them are checked; then even the right token is refused on both."""
    gw1, gw2 = redis_gateway(), redis_gateway()

    async def ws_attempt(gw: GatewayProcess, token: str) -> str:
        async with ws_client(gw.url) as c:
            reply = await c.call("connect", connect_params(token=token))
            return "ok" if reply["ok"] else reply["error"]["message"]

    async def http_attempt(gw: GatewayProcess) -> int:
        headers = {"Authorization": "Bearer wrong"}
        return (await ahttp_get(f"{gw.http_url}/api/agents", headers=headers))[0]

    attempts = [ws_attempt(gw, "wrong") for gw in (gw1, gw2) * 50]
    attempts += [http_attempt(gw) for gw in (gw1, gw2) * 50]
    results = await asyncio.gather(*attempts)
    checked = sum(1 for r in results if r == 401 or (isinstance(r, str) and "mismatch" in r))
    refused = sum(1 for r in results if r == 429 or (isinstance(r, str) and "too many" in r))
    assert (checked, refused) == (auth.MAX_FAILURES, 200 - auth.MAX_FAILURES), results
    for gw in (gw1, gw2):
        assert "too many" in await ws_attempt(gw, TOKEN)
