"""End-to-end: abuse against a real gateway process, on uvicorn and on daphne (issue 9).

- a client closed 4029 for rate-limit abuse, or closed after a failed handshake, leaves no
  ghost (presence, ``/health`` connections) and nothing it had queued is processed or
  logged as an error;
- a flood of unparseable frames counts against the rate limit and is closed 4029 while
  another client keeps being served;
- the auth lockout lasts ``WINGMAN_AUTH_LOCKOUT_SECONDS`` and covers the WebSocket, ``/api/``
  and ``/stats`` alike (two processes sharing Redis: tests/gateway/test_e2e_redis.py).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.gateway.gateway_process import (
    TOKEN,
    GatewayProcess,
    WsClient,
    ahttp_get,
    connect_params,
    connected,
    wait_until,
    ws_client,
)

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _errors(gw: GatewayProcess) -> list[str]:
    """Log lines that report an error or a traceback (abuse must cause neither)."""
    return [line for line in gw.log().splitlines() if "Traceback" in line or " ERROR " in line]


async def _connections(gw: GatewayProcess) -> int:
    status, _, body = await ahttp_get(f"{gw.http_url}/health")
    assert status == 200, body
    return json.loads(body)["stats"]["connections"]


async def _connections_equal(gw: GatewayProcess, n: int) -> bool:
    return await _connections(gw) == n


async def _flood(c: WsClient, frame: str | bytes, *, seconds: float = 10) -> tuple[int, int]:
    """Send ``frame`` as fast as possible until the server closes (at most ``seconds``);
    returns (frames sent, responses received)."""
    sent = 0
    deadline = time.monotonic() + seconds
    with pytest.raises(ConnectionClosed):
        while time.monotonic() < deadline:
            await c.ws.send(frame)
            sent += 1
            if sent % 64 == 0:
                await asyncio.sleep(0)  # let the client's reader see the close frame
        raise AssertionError(f"{c.name}: not closed after {sent} frames in {seconds} s")
    responses = 0
    with pytest.raises(ConnectionClosed):
        while True:
            frame_in = json.loads(await asyncio.wait_for(c.ws.recv(), 5))
            responses += frame_in.get("type") == "res"
    return sent, responses


async def test_rate_limit_abuse_leaves_no_ghost(gateway_factory, each_server) -> None:
    limit = 5
    gw = gateway_factory({"WINGMAN_ASGI_SERVER": each_server, "WINGMAN_RATE_LIMIT": str(limit)})
    async with connected(gw, name="observer") as observer:
        assert observer.hello is not None
        me = observer.hello["server"]["connId"]
        for round_ in range(3):
            async with ws_client(gw.url, name=f"abuser{round_}", max_queue=None) as c:
                await c.handshake()
                ping = json.dumps(c.request_frame("ping"))
                _, responses = await _flood(c, ping)
                assert c.ws.close_code == 4029, f"closed {c.ws.close_code}\n{gw.log_tail()}"
                assert responses <= 2 * limit + 2, f"{responses} frames answered"
        await wait_until(
            lambda: _connections_equal(gw, 1), timeout=10, what="/health connections == 1"
        )
        listed = await observer.ok("system-presence", {})
        assert [e["connId"] for e in listed["presence"]] == [me], listed
    assert _errors(gw) == [], gw.log_tail(80)


async def test_failed_handshake_then_queued_ping_is_dropped(gateway_factory, each_server) -> None:
    gw = gateway_factory({"WINGMAN_ASGI_SERVER": each_server})
    async with ws_client(gw.url, name="wrong-token") as c:
        bad = c.request_frame("connect", connect_params(token="wrong"))
        late = c.request_frame("ping")
        await c.ws.send(json.dumps(bad))
        await c.ws.send(json.dumps(late))  # already queued when the server closes
        code, got = await c.expect_close()
        assert code == 1008, code
        assert [f.get("id") for f in got] == [bad["id"]], f"after the close: {got}"
    await wait_until(lambda: _connections_equal(gw, 0), timeout=10, what="no connection left")
    assert _errors(gw) == [], gw.log_tail(80)


async def test_unparseable_flood_is_closed_4029(gateway_factory, each_server) -> None:
    limit = 20
    gw = gateway_factory({"WINGMAN_ASGI_SERVER": each_server, "WINGMAN_RATE_LIMIT": str(limit)})
    async with connected(gw, name="bystander") as bystander:
        async with ws_client(gw.url, name="flood", max_queue=None) as c:
            await c.handshake()
            sent, responses = await _flood(c, "not json at all")
            assert c.ws.close_code == 4029, f"closed {c.ws.close_code} after {sent} frames"
            assert responses <= 2 * limit + 2, f"{responses} of {sent} frames answered"
        await bystander.ping_ok()
    await wait_until(lambda: _connections_equal(gw, 0), timeout=10, what="no connection left")
    assert _errors(gw) == [], gw.log_tail(80)


async def test_lockout_covers_websocket_api_and_stats_for_its_configured_time(
    gateway_factory,
) -> None:
    lockout = 4.0
    gw = gateway_factory({"WINGMAN_AUTH_LOCKOUT_SECONDS": str(int(lockout))})

    async def ws_connect(token: str) -> dict:
        async with ws_client(gw.url) as c:
            return await c.call("connect", connect_params(token=token))

    async def api(path: str, token: str) -> tuple[int, dict[str, str], bytes]:
        return await ahttp_get(f"{gw.http_url}{path}", headers={"Authorization": f"Bearer {token}"})

    for i in range(10):
        assert "mismatch" in (await ws_connect(f"wrong-{i}"))["error"]["message"]
        assert (await api("/api/agents", f"wrong-{i}"))[0] == 401
    locked_at = time.monotonic()  # the lockout began before the 20th failure's answer
    locked = (await ws_connect(TOKEN))["error"]
    assert "too many" in locked["message"], locked
    assert 0 < locked["retryAfterMs"] <= lockout * 1000, locked
    for path in ("/stats", "/api/agents"):
        status, headers, body = await api(path, TOKEN)
        assert status == 429, (path, status, body[:200])
        assert 1 <= int(headers["Retry-After"]) <= lockout, headers
        json.loads(body)  # JSON, not an HTML page
    # more wrong tokens while the lockout surely lasts (a loaded machine may answer slowly:
    # the attempts stop a second before it ends): none is checked, every one is 429
    statuses = []
    while len(statuses) < 220 and time.monotonic() - locked_at < lockout - 1:
        statuses.append((await api("/api/agents", f"more-{len(statuses)}"))[0])
    assert set(statuses) == {429}, f"checked during the lockout: {statuses.count(401)}"
    assert len(statuses) > 20, f"only {len(statuses)} attempts in {lockout - 1} s"
    await asyncio.sleep(max(0.0, locked_at + lockout + 0.5 - time.monotonic()))
    assert (await ws_connect(TOKEN))["ok"] is True, "still locked out after its time"
    assert (await api("/stats", TOKEN))[0] == 200
    assert (await api("/api/agents", TOKEN))[0] == 200
