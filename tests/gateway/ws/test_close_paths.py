"""Every way a socket ends forgets the connection exactly once, and nothing is processed
after the close (issue 9, item 1). Through the real ASGI app with Channels' communicator, on
the embedded default and on Redis; tests/gateway/test_e2e_abuse.py repeats the server-close
paths on uvicorn and daphne."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from channels_redis.core import RedisChannelLayer

from gateway.delivery.hub import current_hub
from gateway.protocol.errors import CloseCode
from tests.gateway.communicator import Client, connect_frame, validate


def _hub():
    hub = current_hub()
    assert hub is not None, "no hub: the test opened no socket"
    return hub


def _listed(conn_id: str) -> dict[str, bool]:
    """Where the hub still has the connection (all False once it is forgotten)."""
    hub = _hub()
    return {
        "connections": conn_id in hub.connections,
        "presence": conn_id in hub.presence.entries,
        "presence_json": conn_id in hub.presence.entries_json,
        "topics": any(conn_id in members for members in hub.topics.values()),
    }


async def _output_until_close(client: Client, limit: int = 500) -> tuple[list[dict], int]:
    """Frames the server sent before its close frame, and the close code."""
    frames: list[dict[str, Any]] = []
    for _ in range(limit):
        message = await client.comm.receive_output(3)
        if message["type"] == "websocket.close":
            return frames, message.get("code", 1000)
        frames.append(validate(json.loads(message["text"])))
    raise AssertionError(f"no close within {limit} frames: {frames[-3:]}")


async def _presence_disconnects(observer: Client, conn_id: str, seconds: float) -> int:
    """How many presence ``disconnect`` entries for ``conn_id`` arrive within ``seconds``."""
    seen = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        # receive_nothing, not a timed-out receive: that would cancel the observer's app
        if await observer.comm.receive_nothing(0.05):
            continue
        frame = await observer.recv()
        if frame.get("event") == "presence":
            seen += sum(
                1
                for e in frame["payload"]["entries"]
                if e.get("connId") == conn_id and e.get("reason") == "disconnect"
            )
    return seen


async def test_rate_limit_close_forgets_at_once_and_drops_queued_frames(clients, wingman_policy):
    wingman_policy(rate_limit_per_minute=2)
    observer = clients()
    await observer.handshake()
    abuser = clients()
    conn_id = (await abuser.handshake())["payload"]["server"]["connId"]
    for i in range(40):  # all queued before the server reads the first one
        await abuser.send({"type": "req", "id": f"p{i}", "method": "ping"})

    replies, code = await _output_until_close(abuser)
    assert code == CloseCode.RATE_LIMITED
    assert len([r for r in replies if r.get("type") == "res"]) <= 2 * 2 + 1, replies
    assert await abuser.nothing(0.5), "frames queued behind the close were still answered"
    # forgotten before the peer even answered the close (its disconnect comes later)
    assert _listed(conn_id) == dict.fromkeys(_listed(conn_id), False)
    assert await _presence_disconnects(observer, conn_id, 1.0) == 1
    await abuser.close()  # the peer's side of the close: no second removal
    assert await _presence_disconnects(observer, conn_id, 0.6) == 0
    assert conn_id not in _hub().connections


async def test_failed_handshake_then_queued_ping_is_not_executed(clients, wingman_auth):
    wingman_auth("token", token="right")
    c = clients()
    await c.open()
    await c.send(connect_frame(auth={"token": "wrong"}))
    await c.send({"type": "req", "id": "late-ping", "method": "ping"})
    replies, code = await _output_until_close(c)
    assert code == CloseCode.POLICY_VIOLATION
    assert [r["error"]["code"] for r in replies] == ["UNAUTHORIZED"], replies
    assert await c.nothing(0.5), "the ping queued behind a failed handshake was executed"
    assert _hub().connections == {}, "a socket closed after a failed handshake is still counted"


async def test_handshake_timeout_close_forgets_the_socket(clients, wingman_policy):
    wingman_policy(handshake_timeout_ms=100)
    c = clients()
    await c.open()
    assert await c.expect_close() == CloseCode.HANDSHAKE_TIMEOUT
    assert _hub().connections == {}, "a socket closed 4408 is still counted"


async def test_client_close_removes_presence_once(clients):
    observer = clients()
    await observer.handshake()
    leaving = clients()
    conn_id = (await leaving.handshake())["payload"]["server"]["connId"]
    await leaving.close()
    assert _listed(conn_id) == dict.fromkeys(_listed(conn_id), False)
    assert await _presence_disconnects(observer, conn_id, 1.0) == 1


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


async def test_cleanup_completes_when_the_channel_layer_is_down(clients):
    """Redis gone while a subscribed client disconnects: leaving the topic's group fails,
    but the connection and its presence are removed all the same (no ghost afterwards)."""
    observer = clients()
    await observer.handshake()
    leaving = clients()
    conn_id = (await leaving.handshake())["payload"]["server"]["connId"]
    hub = _hub()
    conn = hub.connections[conn_id]
    await hub.join_topic(conn, "session:one")
    await hub.join_topic(conn, "session:two")
    # From now on the hub's channel layer is a Redis nobody answers on: a real outage.
    hub.seat.layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{_dead_port()}"])
    await leaving.close()
    assert _listed(conn_id) == dict.fromkeys(_listed(conn_id), False)
    assert hub.topics == {}, "a topic whose group could not be left is still listed"
    assert await _presence_disconnects(observer, conn_id, 1.0) == 1
