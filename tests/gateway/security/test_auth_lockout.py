"""The per-IP auth lockout (issue 9, item 3), on the embedded cache and on real Redis.

- only failures count, atomically; past the limit a wrong guess is answered as a lockout, so
  concurrent ones cannot get more than MAX answers, and right ones never lock anyone out;
- the lockout lasts ``authLockoutSeconds`` and ``retryAfterMs`` says how long is left;
- the WebSocket, ``/api/`` (gateway token and ``wm_`` API tokens), ``/stats`` and
  ``/metrics`` share one count per IP; HTTP answers a locked-out client 429 + Retry-After.

The counter under it: tests/gateway/test_shared_counter.py. Two real gateway processes
sharing Redis: tests/gateway/test_e2e_redis.py; on a real server: test_e2e_abuse.py.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient
from rest_framework.test import APIClient

from gateway.security import auth, tokens

TOKEN = "right-token"
MAX = auth.MAX_FAILURES


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=TOKEN)


# the WebSocket -------------------------------------------------------------------------------
async def _connect(clients, token: str) -> dict:
    """One handshake's reply (``ok`` or the error)."""
    return await clients().handshake(auth={"token": token})


async def test_lockout_lasts_the_configured_time_and_retry_after_says_so(clients, wingman_policy):
    wingman_policy(auth_lockout_seconds=2)
    for _ in range(MAX):
        res = await _connect(clients, "wrong")
        assert "mismatch" in res["error"]["message"], res
    locked = (await _connect(clients, TOKEN))["error"]
    assert "too many failed authentication attempts" in locked["message"], locked
    assert locked["retryable"] is True
    assert 0 < locked["retryAfterMs"] <= 2000, f"lockout is not the configured 2 s: {locked}"
    await asyncio.sleep(max(0.0, locked["retryAfterMs"] / 1000 - 0.8))
    still = (await _connect(clients, TOKEN))["error"]
    assert "too many" in still["message"] and still["retryAfterMs"] < locked["retryAfterMs"]
    await asyncio.sleep(still["retryAfterMs"] / 1000 + 0.3)
    assert (await _connect(clients, TOKEN))["ok"] is True, "still locked after retryAfterMs"


async def test_concurrent_wrong_tokens_are_checked_at_most_max_failures_times(clients):
    async def attempt() -> str:
        return (await _connect(clients, "wrong"))["error"]["message"]

    messages = await asyncio.gather(*(attempt() for _ in range(200)))
    checked = sum("mismatch" in m for m in messages)
    refused = sum("too many failed authentication attempts" in m for m in messages)
    assert (checked, refused) == (MAX, 200 - MAX), f"{checked} checked, {refused} refused"


async def test_right_credentials_do_not_count_as_failures(clients):
    for _ in range(MAX - 1):
        assert (await _connect(clients, "wrong"))["ok"] is False
    for _ in range(30):
        assert (await _connect(clients, TOKEN))["ok"] is True
    last = await _connect(clients, "wrong")
    assert "mismatch" in last["error"]["message"], "a right token was counted as a failure"
    assert "too many" in (await _connect(clients, TOKEN))["error"]["message"]


async def test_a_burst_of_right_handshakes_from_one_address_is_never_locked_out(clients):
    """A NAT, a reverse proxy or a benchmark: many good handshakes at once from one IP (in
    flight together, on the real cache of each backend) are all accepted."""
    replies = await asyncio.gather(*(_connect(clients, TOKEN) for _ in range(200)))
    refused = [r["error"]["message"] for r in replies if not r["ok"]]
    assert not refused, refused[:3]
    assert (await _connect(clients, "wrong"))["error"]["message"].endswith("mismatch")


# HTTP ----------------------------------------------------------------------------------------
def _api_get(path: str, secret: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get(path)


def _assert_locked_out_json(response, *, within_s: int) -> dict:
    assert response.status_code == 429, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert 1 <= int(response["Retry-After"]) <= within_s, response["Retry-After"]
    return response.json()


@pytest.mark.django_db
def test_wrong_bearer_tokens_lock_the_api_out_with_429(backend):
    alice = User.objects.create_user("alice", password="pw-alice-123")
    _, api_token = tokens.api_token_create(user=alice, name="ci")
    wrong = [f"wrong-{i}" if i % 2 else f"wm_wrong-{i}" for i in range(240)]
    statuses = [_api_get("/api/agents", secret).status_code for secret in wrong]
    assert statuses[:MAX] == [401] * MAX, statuses[:MAX]
    assert set(statuses[MAX:]) == {429}, "wrong tokens after the lockout were still checked"
    for secret in (TOKEN, api_token):  # even the right ones wait the lockout out
        body = _assert_locked_out_json(_api_get("/api/agents", secret), within_s=60)
        assert body["code"] == "RATE_LIMITED", body
        assert 0 < body["retryAfterMs"] <= 60_000, body
        assert "too many failed authentication attempts" in body["detail"], body


@pytest.mark.django_db
def test_api_tokens_that_work_do_not_count(backend):
    alice = User.objects.create_user("alice", password="pw-alice-123")
    _, api_token = tokens.api_token_create(user=alice, name="ci")
    for i in range(MAX - 1):
        assert _api_get("/api/agents", f"wm_wrong-{i}").status_code == 401
    for _ in range(10):
        assert _api_get("/api/agents", api_token).status_code == 200
        assert _api_get("/api/agents", TOKEN).status_code == 200
    assert _api_get("/api/agents", "wrong").status_code == 401
    assert _api_get("/api/agents", TOKEN).status_code == 429


@pytest.mark.django_db(transaction=True)
async def test_websocket_api_stats_and_metrics_share_one_lockout(clients):
    http = AsyncClient()

    async def get(path: str, secret: str):
        return await http.get(path, headers={"Authorization": f"Bearer {secret}"})

    for i in range(MAX // 4):
        assert (await _connect(clients, f"wrong-{i}"))["ok"] is False
        assert (await get("/stats", f"wrong-{i}")).status_code == 401
        assert (await get("/metrics", f"wrong-{i}")).status_code == 401
        assert (await get("/api/agents", f"wrong-{i}")).status_code == 401
    for path in ("/stats", "/metrics"):
        body = _assert_locked_out_json(await get(path, TOKEN), within_s=60)
        assert body["error"]["code"] == "RATE_LIMITED" and body["error"]["retryAfterMs"] > 0
    _assert_locked_out_json(await get("/api/agents", TOKEN), within_s=60)
    assert "too many" in (await _connect(clients, TOKEN))["error"]["message"]


def _dead_redis_cache() -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }


@pytest.mark.django_db(transaction=True)
async def test_an_unreachable_cache_counts_attempts_in_this_process(settings):
    """Redis down: the right token still works (operators read /stats and /metrics during
    an outage), and wrong ones are counted per process, so the lockout still holds."""
    from gateway.security import auth

    settings.CACHES = _dead_redis_cache()
    auth._OUTAGE_COUNTS.clear()
    http = AsyncClient()

    async def get(path: str, secret: str):
        return await http.get(path, headers={"Authorization": f"Bearer {secret}"})

    assert (await get("/metrics", TOKEN)).status_code == 200
    for i in range(MAX):
        assert (await get("/metrics", f"wrong-{i}")).status_code == 401
    locked = await get("/metrics", TOKEN)
    assert locked.status_code == 429, locked.content[:300]
    assert int(locked["Retry-After"]) >= 1
    auth._OUTAGE_COUNTS.clear()
