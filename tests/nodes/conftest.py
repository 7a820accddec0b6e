"""Fixtures for the nodes tests: a token-auth gateway app and signing node clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.gateway.communicator import Client

# The end-to-end fixtures (real gateway subprocesses, logs attached to failures).
from tests.gateway.conftest import (  # noqa: F401
    gateway,
    gateway_factory,
    pytest_runtest_makereport,
)
from tests.nodes.signer import TestDevice, invoke_result

TOKEN = "secret"


@pytest.fixture
def token_auth(wingman_auth):
    wingman_auth("token", token=TOKEN)


async def connect_node(
    clients, dev: TestDevice | None = None, *, ip: str = "127.0.0.1", **kw: Any
) -> tuple[Client, dict[str, Any], TestDevice]:
    """A signed node connection (from ``ip``): (client, connect response, device)."""
    dev = dev or TestDevice()
    c: Client = clients(client=(ip, 40000))
    challenge = await c.open()
    frame = dev.connect(challenge["payload"], **kw)
    await c.send(frame)
    res = await c.recv_res()
    return c, res, dev


async def operator(clients, scopes: list[str] | None = None) -> Client:
    """An operator on the gateway token (asking ``scopes``; None: the default grant)."""
    c: Client = clients()
    extra: dict[str, Any] = {"auth": {"token": TOKEN}, "role": "operator"}
    if scopes is not None:
        extra["scopes"] = scopes
    res = await c.handshake(**extra)
    assert res["ok"], res
    return c


async def event(c: Client, name: str, timeout: float = 3) -> dict[str, Any]:
    """The next event ``name`` on ``c``."""
    frame, _ = await c.recv_until(lambda f: f.get("event") == name, timeout)
    return frame["payload"]


async def answer_invokes(node: Client, reply) -> asyncio.Task:
    """Answer every ``node.invoke.request`` on ``node`` with ``reply(request)`` (a dict of
    result fields, or None for no answer) in the background."""

    async def loop() -> None:
        while True:
            req = await event(node, "node.invoke.request", timeout=30)
            fields = reply(req)
            if fields is None:
                continue
            await node.send(invoke_result(req, fields))

    return asyncio.ensure_future(loop())


async def call_seeing(c: Client, method: str, params: dict, name: str) -> tuple[dict, dict]:
    """Call ``method`` and return (response, the event ``name`` that came before or after
    it: a handler's event may precede its reply)."""
    rid = f"r-{method}"
    await c.send({"type": "req", "id": rid, "method": method, "params": params})
    seen: dict[str, Any] = {}
    for _ in range(50):
        frame = await c.recv()
        if frame.get("event") == name:
            seen["event"] = frame["payload"]
        elif frame.get("type") == "res" and frame.get("id") == rid:
            seen["res"] = frame
        if "event" in seen and "res" in seen:
            return seen["res"], seen["event"]
    raise AssertionError(f"{method}: no {name} event")


async def serve_invokes(node, node_id: str, *, silent: frozenset[str] = frozenset()) -> None:
    """Answer ``system.which`` on a real-gateway ``WsClient`` like the node host does (until
    cancelled); never answer the commands in ``silent`` (for timeouts)."""
    while True:
        frame = await node.recv(timeout=30)
        if frame.get("event") != "node.invoke.request":
            continue  # the replies to its node.invoke.result, ticks
        req = frame["payload"]
        if req["command"] in silent:
            continue
        bins = json.loads(req["paramsJSON"])["bins"]
        payload = {"bins": {b: f"/usr/bin/{b}" for b in bins}}
        await node.send(
            {
                "type": "req",
                "id": f"res-{req['id']}",
                "method": "node.invoke.result",
                "params": {
                    "id": req["id"],
                    "nodeId": node_id,
                    "ok": True,
                    "payloadJSON": json.dumps(payload),
                },
            }
        )
