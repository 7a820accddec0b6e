"""The consumer and connection through WebsocketCommunicator on the real ASGI app,
on the embedded default and on the real Redis (``backend`` fixture)."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.delivery.hub import get_hub
from gateway.protocol.errors import CloseCode
from tests.gateway.communicator import Client, connect_frame


async def test_handshake_returns_hello_ok_with_snapshot(clients):
    c = clients()
    res = await c.handshake()
    assert res["ok"] is True
    hello = res["payload"]
    assert hello["type"] == "hello-ok"
    assert hello["protocol"] == 4
    assert {"health", "status", "ping", "system-presence", "subscribe", "unsubscribe"} <= set(
        hello["features"]["methods"]
    )
    assert {"tick", "presence", "shutdown", "connect.challenge"} <= set(hello["features"]["events"])
    me = hello["server"]["connId"]
    assert [e["connId"] for e in hello["snapshot"]["presence"]] == [me]
    assert hello["policy"] == {
        "maxPayload": 524288,
        "maxBufferedBytes": 1572864,
        "tickIntervalMs": 30000,
    }
    assert c.challenge["payload"]["nonce"] and isinstance(c.challenge["payload"]["ts"], int)


async def test_hello_ok_frame_equals_encoding_the_whole_payload(clients):
    """hello-ok splices the presence entries' cached JSON: same frame as encoding it all."""
    from gateway.rpc import hello

    names = ['quote " and \\ backslash', "ünïcødé ✓", "</script>", "plain"]
    for i, name in enumerate(names):
        client = {"id": f"c{i}", "version": "1.0", "mode": "cli", "displayName": name}
        assert (await clients().handshake(client=client))["ok"] is True
    hub = await get_hub()
    for conn in hub.connections.values():
        to = hello.Greeting(conn.conn_id, conn.identity, conn.codec)
        for rid in ("r-1", 7):
            framed = json.loads(await hello.hello_ok_frame(hub, to, 4, rid))
            entries, sv = await hub.presence.snapshot()
            payload = hello._hello_ok(hub, to, 4, entries, sv)
            whole = json.loads(conn.codec.encode_hello_ok(rid, payload))
            for frame in (framed, whole):  # the clock moved between the two
                frame["payload"]["snapshot"]["health"].pop("ts")
                frame["payload"]["snapshot"].pop("uptimeMs")
                frame["payload"]["snapshot"]["health"].pop("uptimeMs")
            assert framed == whole
            hosts = [e["host"] for e in framed["payload"]["snapshot"]["presence"]]
            assert hosts == names


async def test_protocol_is_the_highest_both_support(clients):
    c = clients()
    res = await c.handshake(minProtocol=3, maxProtocol=3)
    assert res["payload"]["protocol"] == 3


async def test_protocol_mismatch_is_refused_with_1002(clients):
    c = clients()
    res = await c.handshake(minProtocol=1, maxProtocol=2)
    assert res["ok"] is False
    assert res["error"]["details"]["expectedProtocol"] == {"min": 3, "max": 4}
    assert await c.expect_close() == CloseCode.PROTOCOL_ERROR


async def test_methods_after_handshake(clients):
    c = clients()
    await c.handshake()
    ping = await c.call("ping")
    assert ping["payload"]["pong"] is True
    health = await c.call("health", {})
    assert health["payload"]["status"] == "healthy"
    assert health["payload"]["connections"] == 1
    status = await c.call("status")
    assert status["payload"]["presenceCount"] == 1
    presence = await c.call("system-presence")
    assert len(presence["payload"]["presence"]) == 1


async def test_unknown_method_keeps_the_socket_open(clients):
    c = clients()
    await c.handshake()
    res = await c.call("config.nosuch", {})
    assert res["error"] == {"code": "INVALID_REQUEST", "message": "unknown method: config.nosuch"}
    assert (await c.call("ping"))["ok"] is True


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "",
        "[1, 2]",
        json.dumps({"type": "req", "id": "x"}),
        json.dumps({"type": "req", "id": "x", "method": "ping", "extra": 1}),
        json.dumps(
            {
                "type": "req",
                "id": "x",
                "method": "subscribe",
                "params": {"events": ["tick"], "x": 1},
            }
        ),
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["non-json", "empty", "array", "no-method", "undeclared-field", "bad-params", "deep"],
)
async def test_invalid_frames_get_an_error_and_the_socket_stays(clients, frame):
    c = clients()
    await c.handshake()
    await c.send(frame)
    res = await c.recv_res()
    assert res["type"] == "res" and res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["id"] in ("x", "invalid")
    assert (await c.call("ping"))["ok"] is True


async def test_binary_frames(clients):
    c = clients()
    await c.handshake()
    await c.send(json.dumps({"type": "req", "id": "b1", "method": "ping"}).encode())
    assert (await c.recv_res())["ok"] is True
    await c.send(b"\xff\xfe\x00")
    res = await c.recv_res()
    assert res["error"]["code"] == "INVALID_REQUEST"


async def test_oversized_frame_closes_1009(clients, wingman_policy):
    wingman_policy(max_payload=2048)
    c = clients()
    await c.handshake()
    await c.send(
        json.dumps({"type": "req", "id": "big", "method": "ping", "params": {"x": "a" * 4096}})
    )
    assert await c.expect_close() == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    "first",
    ["not json", json.dumps({"foo": 1}), json.dumps([1])],
    ids=["non-json", "no-dialect", "array"],
)
async def test_bad_first_frame_is_a_hard_close(clients, first):
    c = clients()
    await c.open()
    await c.send(first)
    message = await c.comm.receive_output(2)
    assert message == {"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION}


async def test_request_before_connect_is_refused(clients):
    c = clients()
    await c.open()
    await c.send({"type": "req", "id": "early", "method": "health"})
    res = await c.recv()
    assert res["ok"] is False and res["id"] == "early"
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert await c.expect_close() == CloseCode.POLICY_VIOLATION


async def test_handshake_timeout_closes_4408(clients, wingman_policy):
    wingman_policy(handshake_timeout_ms=150)
    c = clients()
    await c.open()
    assert await c.expect_close(timeout=2) == CloseCode.HANDSHAKE_TIMEOUT


async def test_token_auth(clients, wingman_auth):
    wingman_auth("token", token="s3cret")
    good = clients()
    assert (await good.handshake(auth={"token": "s3cret"}))["ok"] is True
    bad = clients()
    res = await bad.handshake(auth={"token": "nope"})
    assert res["error"]["code"] == "UNAUTHORIZED"
    assert "mismatch" in res["error"]["message"]
    assert await bad.expect_close() == CloseCode.POLICY_VIOLATION
    missing = clients()
    res = await missing.handshake()
    assert res["error"]["code"] == "UNAUTHORIZED" and "missing" in res["error"]["message"]


async def test_password_auth(clients, wingman_auth):
    wingman_auth("password", password="pw")
    assert (await clients().handshake(auth={"password": "pw"}))["ok"] is True
    assert (await clients().handshake(auth={"token": "pw"}))["ok"] is False


async def test_brute_force_is_locked_out(clients, wingman_auth):
    from gateway.security import auth

    wingman_auth("token", token="right")
    for _ in range(auth.MAX_FAILURES):
        assert (await clients().handshake(auth={"token": "wrong"}))["ok"] is False
    res = await clients().handshake(auth={"token": "right"})
    assert res["ok"] is False
    assert res["error"]["retryAfterMs"] > 0


async def test_rate_limit_survives_reconnect(clients, wingman_policy):
    wingman_policy(rate_limit_per_minute=3)
    instance = {"id": "rl", "version": "1", "instanceId": "same-instance"}
    c = clients()
    await c.handshake(client=instance)
    for _ in range(3):
        assert (await c.call("ping"))["ok"] is True
    limited = await c.call("ping")
    assert limited["error"]["code"] == "RATE_LIMITED"
    assert limited["error"]["retryAfterMs"] > 0
    await c.close()
    again = clients()
    await again.handshake(client=instance)
    assert (await again.call("ping"))["error"]["code"] == "RATE_LIMITED"


async def test_sustained_abuse_closes_4029(clients, wingman_policy):
    wingman_policy(rate_limit_per_minute=2)
    c = clients()
    await c.handshake()
    for i in range(6):
        await c.send({"type": "req", "id": f"p{i}", "method": "ping"})
    assert await c.expect_close() == CloseCode.RATE_LIMITED


async def test_tick_events_carry_increasing_seq(clients, wingman_policy):
    wingman_policy(tick_interval_ms=100)
    c = clients()
    await c.handshake()
    seqs = []
    while len(seqs) < 3:
        frame, _ = await c.recv_until(lambda f: f.get("event") == "tick")
        seqs.append(frame["seq"])
        assert isinstance(frame["payload"]["ts"], int)
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    await c.call("unsubscribe", {"events": ["tick"]})
    assert await c.nothing(0.35)


async def test_subscribe_rejects_unknown_events(clients):
    c = clients()
    await c.handshake()
    res = await c.call("subscribe", {"events": ["nope"]})
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert "nope" in res["error"]["message"]


async def test_presence_deltas_between_two_clients(clients):
    a = clients()
    await a.handshake()
    # a's own join may arrive first; wait for the event that names b.
    b = clients(client=("127.0.0.2", 50001))
    hello_b = (await b.handshake())["payload"]
    b_id = hello_b["server"]["connId"]
    joined, _ = await a.recv_until(
        lambda f: (
            f.get("event") == "presence"
            and any(e["connId"] == b_id for e in f["payload"]["entries"])
        )
    )
    entry = next(e for e in joined["payload"]["entries"] if e["connId"] == b_id)
    assert entry["reason"] == "connect" and entry["ip"] == "127.0.0.2"
    version = joined["payload"]["stateVersion"]["presence"]
    assert joined["stateVersion"]["presence"] == version
    assert len((await a.call("system-presence"))["payload"]["presence"]) == 2
    await b.close()
    left, _ = await a.recv_until(lambda f: f.get("event") == "presence")
    assert [(e["connId"], e["reason"]) for e in left["payload"]["entries"]] == [
        (b_id, "disconnect")
    ]
    assert left["payload"]["stateVersion"]["presence"] > version


async def test_shutdown_sends_event_then_1012(clients):
    c = clients()
    await c.handshake()
    hub = await get_hub()
    task = asyncio.ensure_future(hub.shutdown("test", grace_seconds=0.5))
    frame, _ = await c.recv_until(lambda f: f.get("event") == "shutdown")
    assert frame["payload"] == {"reason": "test"}
    assert await c.expect_close() == CloseCode.SERVICE_RESTART
    await c.close()
    await task


async def test_legacy_hello_handshake(clients):
    c = clients()
    await c.open()
    await c.send(
        {
            "type": "hello",
            "minProtocol": 3,
            "maxProtocol": 4,
            "client": {"name": "mac", "version": "1.2", "platform": "macos", "mode": "ui"},
        }
    )
    hello = await c.recv()
    assert hello["type"] == "hello-ok" and hello["protocol"] == 4
    assert (await c.call("ping"))["ok"] is True


async def test_legacy_hello_error(clients, wingman_auth):
    wingman_auth("token", token="t")
    c = clients()
    await c.open()
    await c.send(
        {
            "type": "hello",
            "minProtocol": 3,
            "maxProtocol": 4,
            "client": {"name": "x", "version": "1"},
        }
    )
    err = await c.recv()
    assert err["type"] == "hello-error" and err["code"] == "UNAUTHORIZED"
    assert await c.expect_close() == CloseCode.POLICY_VIOLATION


# jsonrpc ------------------------------------------------------------------------------------
async def rpc(c: Client, rid, method, params=None):
    frame = {"id": rid, "method": method}
    if params is not None:
        frame["params"] = params
    await c.send(frame)
    return await c.recv()


async def test_jsonrpc_without_auth(clients):
    c = clients()
    await c.open()
    assert (await rpc(c, 1, "ping"))["result"]["pong"] is True
    health = await rpc(c, 2, "health")
    assert health["id"] == 2 and health["result"]["status"] == "healthy"
    unknown = await rpc(c, 3, "nope")
    assert unknown == {
        "id": 3,
        "error": {"code": "INVALID_REQUEST", "message": "unknown method: nope"},
    }


async def test_jsonrpc_auth_flow_and_presence_tick(clients, wingman_auth, wingman_policy):
    wingman_auth("token", token="tok")
    wingman_policy(presence_tick_ms=100)
    c = clients()
    await c.open()
    assert (await rpc(c, 1, "ping"))["result"]["pong"] is True
    assert (await rpc(c, 2, "health"))["error"]["code"] == "UNAUTHORIZED"
    assert (await rpc(c, 3, "auth", {"token": "bad"}))["error"]["code"] == "UNAUTHORIZED"
    assert (await rpc(c, 4, "auth", {"token": "tok"}))["result"]["ok"] is True
    assert (await rpc(c, "five", "subscribe", {"events": ["presence.tick"]}))["id"] == "five"
    frame, _ = await c.recv_until(lambda f: f.get("event") == "presence.tick")
    assert frame["payload"]["count"] == 1 and isinstance(frame["timestamp"], int)
    assert frame["seq"] >= 1


async def test_connect_frame_fixture_shape_is_accepted(clients):
    c = clients()
    await c.open()
    await c.send(connect_frame(caps=[], role="operator", scopes=["operator.read"]))
    assert (await c.recv())["ok"] is True
