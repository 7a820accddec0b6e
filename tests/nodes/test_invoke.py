"""node.invoke through the real ASGI app: the node's answer, node errors, timeout, cancel,
disconnect, late results, refused commands and the admin scope of system.run."""

from __future__ import annotations

import asyncio
import traceback

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


class ThreadHops:
    """The event loop's ``run_in_executor`` calls (every ``sync_to_async``, database or
    cache, is one) while in use, each as the stack that made it."""

    def __enter__(self) -> ThreadHops:
        self.stacks: list[str] = []
        self.loop = asyncio.get_running_loop()
        original = self.loop.run_in_executor

        def recording(executor, func, *args):
            self.stacks.append("".join(traceback.format_stack()))
            return original(executor, func, *args)

        self.loop.run_in_executor = recording  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        del self.loop.run_in_executor  # the loop's own method again

    def made_in(self, path: str) -> list[str]:
        return [stack for stack in self.stacks if path in stack]


async def test_invoke_hot_path_makes_no_thread_hop(clients, token_auth, backend):
    """An invoke of a connected, approved node reads no database (the surface is the live
    entry in the cache) and, on the local-memory cache, makes no thread hop at all; on Redis
    the invoke service makes one cache step per side (caller, node's result)."""
    op, node, dev = await approved_node(clients)
    task = await answer_invokes(node, lambda req: {"ok": True, "payloadJSON": req["paramsJSON"]})
    try:
        await op.call("node.invoke", invoke(dev.device_id, "system.which", {"i": 0}))  # warm
        with ThreadHops() as hops:
            for i in range(1, 4):
                res = await op.call("node.invoke", invoke(dev.device_id, "system.which", {"i": i}))
                assert res["payload"]["payload"] == {"i": i}, res
    finally:
        task.cancel()
    handling = hops.made_in("gateway/ws/connection.py")
    assert not [s for s in handling if "database_sync_to_async" in s or "/db.py" in s], handling
    if backend == "memory":
        assert handling == [], handling[0]
    else:
        assert len(hops.made_in("nodes/services/invoke.py")) == 2 * 3, hops.stacks
