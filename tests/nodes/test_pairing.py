"""Device pairing (loopback silent approval, NOT_PAIRED elsewhere, device tokens) and node
surface pairing, through the real ASGI app."""

from __future__ import annotations

import asyncio

import pytest

from gateway.security import device as dv
from nodes.models import Device, Node
from tests.nodes.conftest import call_seeing, connect_node, event, operator

pytestmark = pytest.mark.django_db(transaction=True)


async def test_loopback_node_is_approved_silently_with_a_device_token(clients, token_auth):
    node, res, dev = await connect_node(clients)
    assert res["ok"], res
    auth = res["payload"]["auth"]
    assert auth["role"] == "node" and auth["deviceToken"]
    stored = await Device.objects.aget(device_id=dev.device_id)
    assert stored.public_key == dev.public_key and stored.address == "127.0.0.1"
    assert stored.token_hash and auth["deviceToken"] not in stored.token_hash  # hashed
    # the device token works instead of the gateway secret, and is not issued again
    connected_at = stored.last_seen
    await node.close()
    for _ in range(100):  # the connection's end is the device's last sighting
        seen = (await Device.objects.aget(device_id=dev.device_id)).last_seen
        if seen > connected_at:
            break
        await asyncio.sleep(0.02)
    assert seen > connected_at
    _again, res2, _ = await connect_node(clients, dev, token=auth["deviceToken"])
    assert res2["ok"], res2
    assert "deviceToken" not in res2["payload"]["auth"]
    # a wrong token is refused
    bad, res3, _ = await connect_node(clients, dev, token="wrong")
    assert res3["error"]["code"] == "UNAUTHORIZED"
    assert await bad.expect_close() == 1008


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"nonce": "stale"}, dv.NONCE_MISMATCH),
        ({"signedAt": 1}, dv.SIGNATURE_EXPIRED),
        ({"signature": "AAAA"}, dv.SIGNATURE_INVALID),
        ({"id": "f" * 64}, dv.DEVICE_ID_MISMATCH),
        ({"publicKey": "abc"}, dv.PUBLIC_KEY_INVALID),
    ],
)
async def test_device_failures_answer_their_code_and_close_1008(clients, token_auth, tamper, code):
    c, res, _ = await connect_node(clients, tamper=tamper)
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["details"]["code"] == code
    assert await c.expect_close() == 1008


async def test_remote_device_needs_pairing_then_uses_its_token(clients, token_auth):
    op = await operator(clients)
    await op.call("subscribe", {"events": ["device.pair.requested", "device.pair.resolved"]})
    c, res, dev = await connect_node(
        clients, ip="10.1.2.3", role="operator", scopes=["operator.read"]
    )
    err = res["error"]
    assert err["code"] == "NOT_PAIRED" and err["details"]["code"] == "PAIRING_REQUIRED"
    request_id = err["details"]["requestId"]
    assert await c.expect_close() == 1008
    requested = await event(op, "device.pair.requested")
    assert requested["requestId"] == request_id and requested["remoteIp"] == "10.1.2.3"
    listed = (await op.call("device.pair.list", {}))["payload"]
    assert [p["requestId"] for p in listed["pending"]] == [request_id]
    # a second attempt reuses the pending request
    _c2, res2, _ = await connect_node(
        clients, dev, ip="10.1.2.3", role="operator", scopes=["operator.read"]
    )
    assert res2["error"]["details"]["requestId"] == request_id
    approved, resolved = await call_seeing(
        op, "device.pair.approve", {"requestId": request_id}, "device.pair.resolved"
    )
    assert approved["ok"], approved
    assert resolved["decision"] == "approved" and resolved["requestId"] == request_id
    unknown = await op.call("device.pair.approve", {"requestId": request_id})
    assert unknown["error"]["message"] == "unknown requestId"
    _c3, res3, _ = await connect_node(
        clients, dev, ip="10.1.2.3", role="operator", scopes=["operator.read"]
    )
    assert res3["ok"], res3
    token = res3["payload"]["auth"]["deviceToken"]
    assert res3["payload"]["auth"]["scopes"] == ["operator.read"]
    # the device token carries the approved scopes only
    _c4, res4, _ = await connect_node(
        clients, dev, ip="10.1.2.3", role="operator", scopes=["operator.admin"], token=token
    )
    assert res4["ok"] and res4["payload"]["auth"]["scopes"] == [], res4
    # rotate: the old token stops working; revoke: the new one too
    rotated = (await op.call("device.token.rotate", {"deviceId": dev.device_id}))["payload"]
    _c5, res5, _ = await connect_node(
        clients, dev, ip="10.1.2.3", role="operator", scopes=["operator.read"], token=token
    )
    assert res5["error"]["code"] == "UNAUTHORIZED"
    _c6, res6, _ = await connect_node(
        clients,
        dev,
        ip="10.1.2.3",
        role="operator",
        scopes=["operator.read"],
        token=rotated["token"],
    )
    assert res6["ok"], res6
    await op.call("device.token.revoke", {"deviceId": dev.device_id})
    _c7, res7, _ = await connect_node(
        clients,
        dev,
        ip="10.1.2.3",
        role="operator",
        scopes=["operator.read"],
        token=rotated["token"],
    )
    assert res7["error"]["code"] == "UNAUTHORIZED"


async def test_rejected_device_stays_unpaired(clients, token_auth):
    op = await operator(clients)
    _c, res, dev = await connect_node(clients, ip="10.9.9.9")
    request_id = res["error"]["details"]["requestId"]
    rejected = await op.call("device.pair.reject", {"requestId": request_id})
    assert rejected["ok"], rejected
    assert not await Device.objects.filter(device_id=dev.device_id).aexists()
    _c2, res2, _ = await connect_node(clients, dev, ip="10.9.9.9")
    assert res2["error"]["details"]["requestId"] != request_id


async def test_node_surface_pending_until_approved(clients, token_auth):
    op = await operator(
        clients, ["operator.read", "operator.pairing", "operator.write", "operator.admin"]
    )
    await op.call("subscribe", {"events": ["node.pair.requested", "node.pair.resolved"]})
    node, res, dev = await connect_node(clients, commands=["system.which"])
    assert res["ok"], res
    requested = await event(op, "node.pair.requested")
    assert requested["nodeId"] == dev.device_id and requested["commands"] == ["system.which"]
    assert requested["requiredApproveScopes"] == ["operator.pairing"]
    row = (await op.call("node.describe", {"nodeId": dev.device_id}))["payload"]
    assert row["approvalState"] == "pending-approval" and row["commands"] == []
    assert row["connected"] is True and row["paired"] is False
    assert row["pendingRequestId"] == requested["requestId"]
    inv = await op.call(
        "node.invoke", {"nodeId": dev.device_id, "command": "system.which", "params": {}}
    )
    assert (
        inv["error"]["code"] == "INVALID_REQUEST" and "pending approval" in inv["error"]["message"]
    )
    report = await node.call(
        "node.runnerInventory.update", {"protocolFeatures": [], "workerHost": {}}
    )
    assert report["error"]["code"] == "UNAVAILABLE"
    stats = await node.call(
        "node.event", {"event": "node.host.stats", "payloadJSON": '{"cpuCount":2}'}
    )
    assert stats["payload"] == {"ok": True, "event": "node.host.stats", "handled": True}
    approved = await op.call("node.pair.approve", {"requestId": requested["requestId"]})
    assert approved["payload"]["node"]["commands"] == ["system.which"], approved
    resolved = await event(node, "node.pair.resolved")
    assert resolved["decision"] == "approved" and resolved["nodeId"] == dev.device_id
    report = await node.call(
        "node.runnerInventory.update", {"protocolFeatures": [], "workerHost": {}}
    )
    assert report["payload"] == {"nodeId": dev.device_id}
    listed = (await op.call("node.list", {}))["payload"]["nodes"]
    (mine,) = [n for n in listed if n["nodeId"] == dev.device_id]
    assert mine["approvalState"] == "approved" and mine["hostStats"]["cpuCount"] == 2
    # a wider surface needs approval again; the approved part keeps working meanwhile
    await node.close()
    _node2, _res2, _ = await connect_node(clients, dev, commands=["system.which", "system.run"])
    again = await event(op, "node.pair.requested")
    assert again["requiredApproveScopes"] == ["operator.pairing", "operator.admin"]
    row = (await op.call("node.describe", {"nodeId": dev.device_id}))["payload"]
    assert row["approvalState"] == "pending-reapproval" and row["commands"] == ["system.which"]
    pairing_only = await operator(clients, ["operator.pairing"])
    refused = await pairing_only.call("node.pair.approve", {"requestId": again["requestId"]})
    assert (
        refused["error"]["code"] == "FORBIDDEN" and "operator.admin" in refused["error"]["message"]
    )
    renamed = await op.call("node.rename", {"nodeId": dev.device_id, "displayName": "build-box"})
    assert renamed["payload"]["displayName"] == "build-box"
    removed = await op.call("node.pair.remove", {"nodeId": dev.device_id})
    assert removed["payload"] == {"nodeId": dev.device_id}
    assert not await Node.objects.filter(node_id=dev.device_id).aexists()


async def test_presence_lists_nodes_with_their_device(clients, token_auth):
    _node, _res, dev = await connect_node(clients)
    op = await operator(clients)
    presence = (await op.call("system-presence", {}))["payload"]["presence"]
    (entry,) = [e for e in presence if e.get("role") == "node"]
    assert entry["deviceId"] == dev.device_id


async def test_pending_requests_expire(clients, token_auth):
    """An expired surface request is gone from the list and cannot be approved; the node's
    next connect asks again with a new request."""
    from datetime import timedelta

    from django.utils import timezone

    from nodes.models import NodePairingRequest

    op = await operator(clients, ["operator.read", "operator.pairing", "operator.admin"])
    node, _res, dev = await connect_node(clients, commands=["system.which"])
    (request,) = (await op.call("node.pair.list", {}))["payload"]["pending"]
    await NodePairingRequest.objects.filter(request_id=request["requestId"]).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert (await op.call("node.pair.list", {}))["payload"]["pending"] == []
    late = await op.call("node.pair.approve", {"requestId": request["requestId"]})
    assert late["error"]["message"] == "unknown requestId"
    await node.close()
    await connect_node(clients, dev, commands=["system.which"])
    (again,) = (await op.call("node.pair.list", {}))["payload"]["pending"]
    assert again["requestId"] != request["requestId"]


async def test_unknown_node_or_device_is_an_invalid_request(clients, token_auth):
    op = await operator(clients, ["operator.read", "operator.pairing", "operator.admin"])
    for method, params, message in (
        ("node.rename", {"nodeId": "nope", "displayName": "x"}, "unknown nodeId: nope"),
        ("node.pair.remove", {"nodeId": "nope"}, "unknown nodeId: nope"),
        ("device.pair.remove", {"deviceId": "nope"}, "unknown deviceId: nope"),
        ("device.token.rotate", {"deviceId": "nope"}, "unknown deviceId: nope"),
        ("device.pair.reject", {"requestId": "nope"}, "unknown requestId"),
    ):
        res = await op.call(method, params)
        assert res["error"]["code"] == "INVALID_REQUEST", (method, res)
        assert res["error"]["message"] == message, (method, res)
