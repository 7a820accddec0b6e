"""Shared fixtures: isolation between tests, the real services, WebSocket helpers."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from channels.layers import channel_layers
from django.core.cache import cache

import gateway.delivery.hub
import gateway.delivery.seat
from gateway.security import ratelimit
from gateway.state import outage

REDIS_URL = os.environ.get("WINGMAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
PG_ADMIN_URL = os.environ.get(
    "WINGMAN_E2E_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def require_redis() -> None:
    """Redis tests fail loudly under CI and skip (with a reason) elsewhere when it is missing."""
    if redis_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("Redis is not running on 127.0.0.1:6379 (tests/run.sh starts it)")
    pytest.skip("Redis is not running on 127.0.0.1:6379; run tests/run.sh to start it")


@pytest.fixture(autouse=True)
def _isolated_state():
    """Fresh cache, channel layer and hub for every test."""
    cache.clear()
    outage.redis_state.down_since = None  # one test's dead Redis is not the next one's
    ratelimit.reset_local()
    channel_layers.backends.clear()
    gateway.delivery.hub._hub = None
    gateway.delivery.seat._seat = None
    yield
    channel_layers.backends.clear()
    gateway.delivery.hub._hub = None
    gateway.delivery.seat._seat = None


@pytest.fixture(params=["memory", "redis"])
def backend(request, settings):
    """Run a test on the embedded default and on the real Redis (channel layer + cache)."""
    if request.param == "redis":
        require_redis()
        prefix = f"wmtest-{uuid.uuid4().hex[:8]}"
        settings.REDIS_URL = REDIS_URL
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "gateway.state.layer.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [{"address": REDIS_URL, **settings.REDIS_POOL_OPTIONS}],
                    "prefix": prefix,
                    "capacity": 10_000,
                },
            }
        }
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": prefix,
                "OPTIONS": dict(settings.REDIS_POOL_OPTIONS),
            }
        }
        channel_layers.backends.clear()
    yield request.param
    if request.param == "redis":
        delete_redis_prefix(prefix)
    channel_layers.backends.clear()


def delete_redis_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Remove one test's keys (never FLUSHDB: other runs may share the server)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def wingman_policy(settings):
    """Change gateway policy values for one test: ``wingman_policy(tick_interval_ms=100)``."""

    def apply(**changes):
        settings.WINGMAN = settings.WINGMAN.model_copy(
            update={"policy": settings.WINGMAN.policy.model_copy(update=changes)}
        )

    return apply


@pytest.fixture
def wingman_auth(settings):
    """Switch the auth mode for one test: ``wingman_auth("token", token="t")``."""

    def apply(mode: str, *, token: str | None = None, password: str | None = None):
        settings.WINGMAN = settings.WINGMAN.model_copy(
            update={"auth_mode": mode, "token": token, "password": password}
        )

    return apply


#: The gateway token of the ``api`` fixture.
API_TOKEN = "api-test-token"


@pytest.fixture
def api(wingman_auth):
    """DRF's APIClient on the real URLconf with the gateway token (auth mode token)."""
    from rest_framework.test import APIClient

    wingman_auth("token", token=API_TOKEN)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {API_TOKEN}")
    return client


@pytest.fixture
async def clients(backend):
    """Factory for test clients on the real ASGI app (both backends); closes them and
    stops the hub afterwards."""
    from gateway.delivery.hub import reset_hub
    from tests.gateway.communicator import Client

    opened: list[Client] = []

    def make(**kwargs) -> Client:
        client = Client(**kwargs)
        opened.append(client)
        return client

    yield make
    for client in opened:
        # a socket the server already closed, or a test that never opened it
        with contextlib.suppress(BaseException):
            await client.close()
    await reset_hub()


# PostgreSQL databases of the end-to-end tests -------------------------------------------
def _pg_admin():
    """An autocommit connection to PostgreSQL's admin database (skip or fail without it)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not available at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL is not available at {PG_ADMIN_URL}: {exc}")


def _database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template`` if given), dropped after."""
    admin = _pg_admin()
    name = f"wme2e_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}".replace("postgresql://", "postgres://", 1)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a PostgreSQL database that ``wingman gateway migrate`` migrated, once per
    session: the template ``shared_database`` copies (migrating takes seconds, copying
    does not)."""
    from tests.gateway.gateway_process import gateway_env, run_cli

    for url in _database():
        state = tmp_path_factory.mktemp("migrated-template")
        done = run_cli(["gateway", "migrate"], gateway_env(state, {"DATABASE_URL": url}))
        assert done.returncode == 0 and "Migrations: applied" in done.stdout, done
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def shared_database(migrated_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test (created and dropped here), with every
    migration applied (a copy of ``migrated_template``)."""
    yield from _database(migrated_template)


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (created and dropped here): for the
    tests of migrating itself."""
    yield from _database()
