"""End-to-end protocol tests: the real gateway process, driven by a real WebSocket client.

What the gateway must answer is design/protocol.md; the OpenClaw frames are the captured
fixtures in tests/fixtures/real-client-frames/ and are sent verbatim.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from gateway.protocol import events as ev
from tests.gateway.gateway_process import (
    SYSTEM_METHODS,
    TOKEN,
    GatewayProcess,
    connect_params,
    connected,
    openclaw_frames,
    scenario_handshake_and_system_methods,
    scenario_presence_between,
    scenario_ticks,
    ws_client,
)

pytestmark = pytest.mark.e2e

INVALID = "INVALID_REQUEST"


@pytest.fixture
def gateway(shared_gateway: GatewayProcess) -> GatewayProcess:
    """One gateway for this module's tests on the default configuration: each uses its own
    connections and changes nothing the others see (the few wrong credentials stay far
    below the auth lockout's count)."""
    return shared_gateway


def assert_error(frame: dict, *, code: str, rid: str, contains: str = "") -> dict:
    assert frame.get("type") == "res" and frame["ok"] is False, f"expected an error: {frame}"
    assert frame["id"] == rid, f"error id {frame['id']!r}, expected {rid!r}: {frame}"
    err = frame["error"]
    assert err["code"] == code, f"error code {err['code']!r}, expected {code!r}: {frame}"
    assert contains in err["message"], f"{contains!r} not in {err['message']!r}"
    return err


# --------------------------------------------------------------------------------------
# 1. real OpenClaw frames
# --------------------------------------------------------------------------------------
async def test_openclaw_cli_frames_handshake_and_calls(gateway: GatewayProcess) -> None:
    """Conns 1-7 verbatim: hello-ok (protocol 4), then health/status/system-presence ok;
    conn 6's ``config.get`` (the probe, scope operator.read) gets the redacted config."""
    conns = openclaw_frames()
    for n in range(1, 8):
        first, *rest = conns[n]
        async with ws_client(gateway.url, name=f"openclaw conn {n}") as c:
            await c.send(first)
            res = await c.response(first["id"], method="connect")
            assert res["ok"] is True, f"conn {n}: connect refused: {res}"
            hello = res["payload"]
            assert hello["protocol"] == 4, f"conn {n}: protocol {hello['protocol']}"
            missing = SYSTEM_METHODS - set(hello["features"]["methods"])
            assert not missing, f"conn {n}: features.methods lacks {missing}"
            me = hello["server"]["connId"]
            instance = first["params"]["client"]["instanceId"]
            assert any(
                e["connId"] == me and e.get("instanceId") == instance
                for e in hello["snapshot"]["presence"]
            ), f"conn {n}: snapshot.presence lacks itself: {hello['snapshot']['presence']}"
            for frame in rest:
                method = frame["method"]
                if method in ("health", "status", "system-presence"):
                    await c.send(frame)
                    res = await c.response(frame["id"], method=method)
                    assert res["ok"] is True, f"conn {n}: {method} failed: {res}"
                    if method == "system-presence":
                        assert me in {e["connId"] for e in res["payload"]["presence"]}
                elif method == "config.get":
                    await c.send(frame)
                    res = await c.response(frame["id"])
                    assert res["ok"] is True, f"conn {n}: config.get failed: {res}"
                    config = res["payload"]["config"]
                    assert config["gateway"]["auth"]["mode"] == "token", config
                    assert "secret" not in json.dumps(res), "config.get leaked the token"
                else:
                    assert method == "agent", f"conn {n}: fixture frame not covered: {frame}"


async def test_openclaw_health_without_params_key(gateway: GatewayProcess) -> None:
    conns = openclaw_frames()
    connect_frame, health = conns[4]
    assert "params" not in health  # the fixture's point
    async with ws_client(gateway.url) as c:
        await c.send(connect_frame)
        assert (await c.response(connect_frame["id"], method="connect"))["ok"] is True
        await c.send(health)
        res = await c.response(health["id"], method="health")
        assert res["ok"] is True and res["payload"]["status"] == "healthy", res


async def test_openclaw_probe_range_3_to_4_gets_protocol_4(gateway: GatewayProcess) -> None:
    connect_frame = openclaw_frames()[6][0]
    assert connect_frame["params"]["minProtocol"] == 3
    assert connect_frame["params"]["maxProtocol"] == 4
    async with ws_client(gateway.url) as c:
        await c.send(connect_frame)
        res = await c.response(connect_frame["id"], method="connect")
        assert res["ok"] is True, res
        assert res["payload"]["protocol"] == 4, res["payload"]


async def test_openclaw_wrong_token_is_unauthorized_then_1008(gateway: GatewayProcess) -> None:
    (connect_frame,) = openclaw_frames()[8]
    async with ws_client(gateway.url) as c:
        await c.send(connect_frame)
        code, got = await c.expect_close()
        assert got, "no reply before the close"
        assert_error(got[0], code="UNAUTHORIZED", rid=connect_frame["id"])
        assert code == 1008, f"close code {code}, expected 1008\n{gateway.log_tail()}"


async def test_openclaw_node_replayed_device_signature_is_refused(gateway: GatewayProcess) -> None:
    """Conn 9 (role node, signed device) replayed verbatim: its signature covers another
    connection's challenge, so it is refused (DEVICE_AUTH_NONCE_MISMATCH) and closed 1008.
    Fresh signatures are tested in tests/nodes/."""
    first, *_ = openclaw_frames()[9]
    async with ws_client(gateway.url, name="node") as c:
        await c.send(first)
        code, got = await c.expect_close()
        assert got, "no reply before the close"
        err = assert_error(got[0], code=INVALID, rid=first["id"])
        assert err["details"]["code"] == "DEVICE_AUTH_NONCE_MISMATCH", err
        assert code == 1008, f"close code {code}, expected 1008"


# --------------------------------------------------------------------------------------
# 2. error paths
# --------------------------------------------------------------------------------------
#: First frames that are not JSON, or match no dialect: hard close 1008, no reply.
BAD_FIRST_FRAMES: list[tuple[str, str | bytes]] = [
    ("not JSON", "this is not json {"),
    ("empty text frame", ""),
    ("binary non-UTF-8", b"\xff\xfe\xfd"),
    ("deeply nested JSON", "[" * 100_000 + "]" * 100_000),
    ("object of no dialect", json.dumps({"foo": 1})),
    ("unknown type", json.dumps({"type": "bogus", "id": "1"})),
    ("JSON array", json.dumps([1, 2])),
    ("JSON number", "42"),
]


async def test_first_frame_not_json_or_no_dialect_closes_1008(gateway: GatewayProcess) -> None:
    failures: list[str] = []
    for name, raw in BAD_FIRST_FRAMES:
        async with ws_client(gateway.url, name=name) as c:
            await c.send(raw)
            try:
                code, got = await c.expect_close()
                assert got == [], f"expected no reply, got {got}"
                assert code == 1008, f"close code {code}, expected 1008"
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures) + "\n" + gateway.log_tail()


async def test_first_request_not_connect_is_invalid_then_1008(gateway: GatewayProcess) -> None:
    async with ws_client(gateway.url) as c:
        await c.send({"type": "req", "id": "first-1", "method": "health", "params": {}})
        code, got = await c.expect_close()
        assert len(got) == 1, f"expected exactly one reply, got {got}"
        assert_error(got[0], code=INVALID, rid="first-1")
        assert code == 1008, f"close code {code}\n{gateway.log_tail()}"


async def test_protocol_mismatch_closes_1002(gateway: GatewayProcess) -> None:
    async with ws_client(gateway.url) as c:
        await c.send(c.request_frame("connect", connect_params(min_protocol=1, max_protocol=2)))
        code, got = await c.expect_close()
        assert len(got) == 1, f"expected exactly one reply, got {got}"
        res = got[0]
        assert res["type"] == "res" and res["ok"] is False, res
        assert "expectedProtocol" in (res["error"].get("details") or {}), res
        assert code == 1002, f"close code {code}\n{gateway.log_tail()}"


#: (name, frame as sent, id the error must echo)
BAD_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("missing method", json.dumps({"type": "req", "id": "bad-1"}), "bad-1"),
    (
        "undeclared field",
        json.dumps({"type": "req", "id": "bad-2", "method": "ping", "bogus": 1}),
        "bad-2",
    ),
    (
        "subscribe params with an extra field",
        json.dumps(
            {
                "type": "req",
                "id": "bad-3",
                "method": "subscribe",
                "params": {"events": ["tick"], "extra": True},
            }
        ),
        "bad-3",
    ),
    (
        "params not an object",
        json.dumps({"type": "req", "id": "bad-4", "method": "ping", "params": [1]}),
        "bad-4",
    ),
    ("unknown frame type", json.dumps({"type": "bogus", "id": "bad-5"}), "bad-5"),
    ("binary non-UTF-8", b"\xff\xfe\xfd\x00\x80", "invalid"),
    ("empty text frame", "", "invalid"),
    ("whitespace only", "   \n", "invalid"),
    ("not JSON", "{nope", "invalid"),
    ("deeply nested JSON", "[" * 100_000 + "]" * 100_000, "invalid"),
    ("JSON number", "42", "invalid"),
    ("JSON array", "[1, 2, 3]", "invalid"),
    ("JSON string", '"hello"', "invalid"),
    ("JSON null", "null", "invalid"),
    (
        "second connect",
        json.dumps({"type": "req", "id": "bad-6", "method": "connect", "params": connect_params()}),
        "bad-6",
    ),
]


async def test_invalid_frames_after_handshake_keep_socket_open(gateway: GatewayProcess) -> None:
    """Each bad frame gets ``res ok:false INVALID_REQUEST`` (id echoed or "invalid"); the
    socket stays open (ping answered after each)."""
    failures: list[str] = []
    async with connected(gateway) as c:
        for name, raw, rid in BAD_FRAMES:
            try:
                await c.send(raw)
                reply = await c.response(rid)
                assert_error(reply, code=INVALID, rid=rid)
                await c.ping_ok()
            except Exception as exc:  # collect every case, report them all
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                if c.ws.close_code is not None:
                    failures.append(f"(socket closed with {c.ws.close_code}; later cases skipped)")
                    break
    assert not failures, "\n".join(failures) + "\n" + gateway.log_tail()


async def test_binary_frame_with_json_is_accepted(gateway: GatewayProcess) -> None:
    async with connected(gateway) as c:
        frame = c.request_frame("ping", {})
        await c.send(json.dumps(frame).encode("utf-8"))
        res = await c.response(frame["id"], method="ping")
        assert res["ok"] is True and res["payload"]["pong"] is True, res


async def test_binary_first_frame_with_json_connects(gateway: GatewayProcess) -> None:
    async with ws_client(gateway.url) as c:
        frame = c.request_frame("connect", connect_params())
        await c.send(json.dumps(frame).encode("utf-8"))
        res = await c.response(frame["id"], method="connect")
        assert res["ok"] is True, res
        await c.ping_ok()


async def test_oversized_frame_closes_1009(gateway_factory, each_server) -> None:
    gateway = gateway_factory({"WINGMAN_ASGI_SERVER": each_server})
    assert f"ASGI server: {each_server}" in gateway.log(), gateway.log_tail()
    async with connected(gateway) as c:
        assert c.hello is not None
        limit = c.hello["policy"]["maxPayload"]
        assert limit == 512 * 1024, c.hello["policy"]
        filler = os.urandom(300 * 1024).hex()  # 600 KiB of incompressible text
        await c.send(json.dumps(c.request_frame("ping", {"filler": filler})))
        code, _ = await c.expect_close()
        assert code == 1009, f"close code {code}, expected 1009\n{gateway.log_tail()}"


async def test_handshake_timeout_closes_4408(gateway_factory, each_server) -> None:
    gw = gateway_factory(
        {"WINGMAN_ASGI_SERVER": each_server, "WINGMAN_HANDSHAKE_TIMEOUT_MS": "500"}
    )
    assert f"ASGI server: {each_server}" in gw.log(), gw.log_tail()
    async with ws_client(gw.url) as c:
        opened = time.monotonic()
        code, got = await c.expect_close(timeout=5)
        waited = time.monotonic() - opened
        assert got == [], got
        assert code == 4408, f"close code {code}, expected 4408\n{gw.log_tail()}"
        assert waited >= 0.4, f"closed after {waited:.2f}s, before the 0.5 s handshake timeout"


async def test_rate_limit_is_per_client_and_survives_reconnect(gateway_factory) -> None:
    gw = gateway_factory({"WINGMAN_RATE_LIMIT": "5"})
    instance = f"rl-{uuid.uuid4()}"
    async with connected(gw, name="first", instance_id=instance) as c:
        for i in range(5):
            assert (await c.call("ping", {}))["ok"] is True, f"request {i + 1} refused"
        err = await c.error("ping", {})
        assert err["code"] == "RATE_LIMITED", err
        assert isinstance(err.get("retryAfterMs"), int) and err["retryAfterMs"] > 0, err
    # a new socket with the same client identity is still limited
    async with connected(gw, name="reconnected", instance_id=instance) as c:
        err = await c.error("ping", {})
        assert err["code"] == "RATE_LIMITED", f"reconnecting reset the rate limit: {err}"
        assert err["retryAfterMs"] > 0, err
        # sustained abuse: keep going until the server closes 4029 (bounded)
        code = None
        for _ in range(30):
            frame = c.request_frame("ping", {})
            try:
                await c.send(frame)
                reply = await c.response(frame["id"])
            except Exception:
                code = c.ws.close_code
                break
            assert reply["ok"] is False and reply["error"]["code"] == "RATE_LIMITED", reply
        if code is None:
            code, _ = await c.expect_close(timeout=2)
        assert code == 4029, f"close code {code}, expected 4029\n{gw.log_tail()}"
    # another client is not affected
    async with connected(gw, name="other", instance_id=f"other-{uuid.uuid4()}") as c:
        await c.ping_ok()


# --------------------------------------------------------------------------------------
# 3. auth modes and the other handshakes
# --------------------------------------------------------------------------------------
async def test_token_mode_right_wrong_missing(gateway: GatewayProcess) -> None:
    async with connected(gateway, token=TOKEN) as c:
        assert c.hello is not None and c.hello["auth"]["role"] == "operator", c.hello
    for label, token in (("wrong", "not-the-token"), ("missing", None)):
        async with ws_client(gateway.url, name=f"{label} token") as c:
            frame = c.request_frame("connect", connect_params(token=token))
            await c.send(frame)
            code, got = await c.expect_close()
            assert got, f"{label} token: no reply before close"
            assert_error(got[0], code="UNAUTHORIZED", rid=frame["id"])
            assert code == 1008, f"{label} token: close code {code}"


async def test_password_mode(gateway_factory) -> None:
    gw = gateway_factory(
        {
            "WINGMAN_AUTH_MODE": "password",
            "WINGMAN_GATEWAY_PASSWORD": "hunter2",
            "WINGMAN_GATEWAY_TOKEN": None,
        }
    )
    async with connected(gw, token=None, password="hunter2") as c:
        await c.ping_ok()
    for label, creds in (
        ("wrong password", {"token": None, "password": "wrong"}),
        ("token instead of password", {"token": "hunter2", "password": None}),
        ("no credentials", {"token": None, "password": None}),
    ):
        async with ws_client(gw.url, name=label) as c:
            frame = c.request_frame("connect", connect_params(**creds))
            await c.send(frame)
            code, got = await c.expect_close()
            assert got, f"{label}: no reply before close"
            assert_error(got[0], code="UNAUTHORIZED", rid=frame["id"])
            assert code == 1008, f"{label}: close code {code}"


async def test_none_mode_needs_no_credentials(gateway_factory) -> None:
    gw = gateway_factory({"WINGMAN_AUTH_MODE": "none", "WINGMAN_GATEWAY_TOKEN": None})
    async with connected(gw, token=None) as c:
        health = await c.ok("health", {})
        assert health["ok"] is True
    async with ws_client(gw.url, dialect="jsonrpc") as c:  # no auth call needed either
        result = await c.ok("health")
        assert result["status"] == "healthy", result


async def test_jsonrpc_dialect(gateway_factory) -> None:
    gw = gateway_factory({"WINGMAN_PRESENCE_TICK_MS": "300"})
    async with ws_client(gw.url, dialect="jsonrpc", name="rpc") as c:
        await c.send({"id": 1, "method": "ping"})
        res = await c.response(1, method="ping")
        assert res["result"]["pong"] is True, res
        err = await c.error("health", rid=2)
        assert err["code"] == "UNAUTHORIZED", err
        err = await c.error("auth", {"token": "wrong"}, rid=3)
        assert err["code"] == "UNAUTHORIZED", err
        result = await c.ok("auth", {"token": TOKEN}, rid=4)
        assert result["ok"] is True, result
        health = await c.ok("health", rid=5)
        assert health["status"] == "healthy", health
        sub = await c.ok("subscribe", {"events": [ev.PRESENCE_TICK]}, rid=6)
        assert ev.PRESENCE_TICK in sub["events"], sub
        first = await c.next_event(ev.PRESENCE_TICK, timeout=3)
        second = await c.next_event(ev.PRESENCE_TICK, timeout=3)
        for frame in (first, second):
            assert set(frame) == {"event", "payload", "timestamp", "seq"}, frame
            assert frame["payload"]["count"] >= 1, frame
        assert second["seq"] > first["seq"], (first, second)
        assert second["timestamp"] >= first["timestamp"]


LEGACY_HELLO = {
    "type": "hello",
    "minProtocol": 3,
    "maxProtocol": 4,
    "client": {
        "name": "clawdis-mac",
        "version": "1.0.0",
        "platform": "darwin",
        "mode": "app",
        "instanceId": "legacy-1",
    },
    "caps": [],
    "auth": {"token": TOKEN},
}


async def test_legacy_hello_gets_hello_ok(gateway: GatewayProcess) -> None:
    async with ws_client(gateway.url, name="legacy") as c:
        await c.send(LEGACY_HELLO)
        frame = await c.recv()
        assert frame["type"] == "hello-ok", frame
        assert frame["protocol"] == 4, frame
        assert "legacy-1" in {e.get("instanceId") for e in frame["snapshot"]["presence"]}
        await c.ping_ok()  # then plain canonical requests


async def test_legacy_hello_wrong_token_gets_hello_error(gateway: GatewayProcess) -> None:
    async with ws_client(gateway.url, name="legacy") as c:
        await c.send({**LEGACY_HELLO, "auth": {"token": "wrong"}})
        code, got = await c.expect_close()
        assert got and got[0]["type"] == "hello-error", got
        assert got[0]["reason"], got
        assert code == 1008, f"close code {code}"


# --------------------------------------------------------------------------------------
# 4. events
# --------------------------------------------------------------------------------------
async def test_system_methods(gateway: GatewayProcess) -> None:
    health = await scenario_handshake_and_system_methods(gateway)
    assert health["channelLayer"] == "in-memory", health


async def test_tick_every_interval_with_consecutive_seq(gateway_factory) -> None:
    gw = gateway_factory({"WINGMAN_TICK_INTERVAL_MS": "300"})
    await scenario_ticks(gw, 300)


async def test_presence_between_two_clients(gateway: GatewayProcess) -> None:
    await scenario_presence_between(gateway, gateway)


async def test_unsubscribe_tick_stops_ticks(gateway_factory) -> None:
    gw = gateway_factory({"WINGMAN_TICK_INTERVAL_MS": "200"})
    async with connected(gw) as c:
        await c.next_event(ev.TICK, timeout=2)  # ticks do flow before
        result = await c.ok("unsubscribe", {"events": [ev.TICK]})
        assert ev.TICK not in result["events"], result
        c.clear_backlog()
        await c.expect_silence(1.0)  # five tick intervals
        await c.ping_ok()
        result = await c.ok("subscribe", {"events": [ev.TICK]})
        assert ev.TICK in result["events"], result
        await c.next_event(ev.TICK, timeout=2)


async def test_subscribe_unknown_event_is_invalid(gateway: GatewayProcess) -> None:
    async with connected(gateway) as c:
        frame = await c.call("subscribe", {"events": ["no.such.event"]})
        assert_error(frame, code=INVALID, rid=frame["id"], contains="no.such.event")
        frame = await c.call("unsubscribe", {"events": []})
        assert_error(frame, code=INVALID, rid=frame["id"])
        await c.ping_ok()
