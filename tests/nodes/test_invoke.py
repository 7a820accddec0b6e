"""node.invoke through the real ASGI app: the node's answer, node errors, timeout, cancel,
disconnect, late results, refused commands and the admin scope of system.run."""

from __future__ import annotations

import asyncio

import pytest

from tests.nodes.conftest import answer_invokes, connect_node, event, operator

pytestmark = pytest.mark.django_db(transaction=True)

ALL = ["operator.read", "operator.write", "operator.admin", "operator.pairing"]


async def approved_node(clients, commands=None):
    """A connected node whose surface an operator approved, and that operator."""
    op = await operator(clients, ALL)
    node, res, dev = await connect_node(clients, commands=commands)
    assert res["ok"], res
    pending = (await op.call("node.pair.list", {}))["payload"]["pending"]
    (request,) = [p for p in pending if p["nodeId"] == dev.device_id]
    approved = await op.call("node.pair.approve", {"requestId": request["requestId"]})
    assert approved["ok"], approved
    await event(node, "node.pair.resolved")
    return op, node, dev


def invoke(node_id, command, params=None, timeout_ms=3000):
    return {
        "nodeId": node_id,
        "command": command,
        "params": params if params is not None else {},
        "timeoutMs": timeout_ms,
        "idempotencyKey": f"k-{command}",
    }


async def test_invoke_round_trip_and_node_error(clients, token_auth):
    op, node, dev = await approved_node(clients)
    seen = []

    def reply(req):
        seen.append(req)
        if req["command"] == "system.which":
            return {"ok": True, "payloadJSON": '{"bins":{"uname":"/usr/bin/uname"}}'}
        return {"ok": False, "error": {"code": "SYSTEM_RUN_DENIED", "message": "allowlist miss"}}

    task = await answer_invokes(node, reply)
    try:
        res = await op.call(
            "node.invoke", invoke(dev.device_id, "system.which", {"bins": ["uname"]})
        )
        assert res["payload"] == {
            "ok": True,
            "nodeId": dev.device_id,
            "command": "system.which",
            "payload": {"bins": {"uname": "/usr/bin/uname"}},
            "payloadJSON": '{"bins":{"uname":"/usr/bin/uname"}}',
        }
        assert seen[0]["paramsJSON"] == '{"bins":["uname"]}' and seen[0]["timeoutMs"] == 3000
        denied = await op.call(
            "node.invoke", invoke(dev.device_id, "system.run", {"command": ["x"]})
        )
        err = denied["error"]
        assert err["code"] == "UNAVAILABLE"
        assert err["message"] == "SYSTEM_RUN_DENIED: allowlist miss"
        assert err["details"]["nodeError"]["code"] == "SYSTEM_RUN_DENIED"
    finally:
        task.cancel()


async def test_refusals(clients, token_auth):
    op, _node, dev = await approved_node(clients)
    writer = await operator(clients, ["operator.write"])
    res = await writer.call("node.invoke", invoke(dev.device_id, "system.run", {"command": ["id"]}))
    assert res["error"]["code"] == "FORBIDDEN" and "operator.admin" in res["error"]["message"]
    res = await op.call("node.invoke", invoke(dev.device_id, "system.execApprovals.get"))
    assert res["error"]["code"] == "INVALID_REQUEST", res
    res = await op.call("node.invoke", invoke(dev.device_id, "camera.snap"))
    assert res["error"]["message"] == "node command not allowed: camera.snap"
    res = await op.call("node.invoke", invoke("no-such-node", "system.which"))
    assert res["error"] == {"code": "UNAVAILABLE", "message": "node not connected"}


async def test_timeout_then_late_result_is_ignored(clients, token_auth):
    op, node, dev = await approved_node(clients)
    res = await op.call("node.invoke", invoke(dev.device_id, "system.which", timeout_ms=300))
    assert res["error"]["code"] == "UNAVAILABLE" and res["error"]["message"].startswith("TIMEOUT")
    req = await event(node, "node.invoke.request")
    cancel = await event(node, "node.invoke.cancel")
    assert cancel["invokeId"] == req["id"]
    late = await node.call(
        "node.invoke.result",
        {"id": req["id"], "nodeId": dev.device_id, "ok": True, "payloadJSON": "{}"},
    )
    assert late["payload"] == {"ok": True, "ignored": True}


async def test_cancel(clients, token_auth):
    op, node, dev = await approved_node(clients)
    canceller = await operator(clients, ["operator.write"])
    waiting = asyncio.ensure_future(op.call("node.invoke", invoke(dev.device_id, "system.which")))
    req = await event(node, "node.invoke.request")
    got = await canceller.call(
        "node.invoke.cancel", {"invokeId": req["id"], "nodeId": dev.device_id}
    )
    assert got["payload"] == {"ok": True, "cancelled": True}
    res = await waiting
    assert res["error"]["code"] == "UNAVAILABLE" and res["error"]["message"].startswith("CANCELLED")
    assert (await event(node, "node.invoke.cancel"))["invokeId"] == req["id"]


async def test_node_disconnect_fails_the_invoke(clients, token_auth):
    op, node, dev = await approved_node(clients)
    waiting = asyncio.ensure_future(op.call("node.invoke", invoke(dev.device_id, "system.which")))
    await event(node, "node.invoke.request")
    await node.close()
    res = await asyncio.wait_for(waiting, 3)
    assert res["error"]["code"] == "UNAVAILABLE", res
    assert res["error"]["message"] == "NODE_DISCONNECTED: node disconnected"
    again = await op.call("node.invoke", invoke(dev.device_id, "system.which"))
    assert again["error"]["message"] == "node not connected"
    row = (await op.call("node.describe", {"nodeId": dev.device_id}))["payload"]
    assert row["connected"] is False and row["approvalState"] == "approved"
