"""An operator's pairing decisions, whole: the stored change (``pairing.py``,
``devices.py``), then the node's live surface and the events connections see.

The gateway methods (``nodes/methods.py``) and the admin (``nodes/admin.py``) both call these,
so a decision has the same effects wherever it is taken.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from gateway.delivery.publish import publish, publish_topic
from gateway.protocol import events as ev
from gateway.protocol.dialects.base import node_topic, now_ms
from nodes.models import Device, DevicePairingRequest, Node, NodePairingRequest
from nodes.services import devices, invoke, pairing
from nodes.services.authority import resolved_payload

db = database_sync_to_async


async def _node_resolved(request_id: str, node_id: str, decision: str) -> None:
    payload = resolved_payload(request_id, node_id, decision)
    await publish(ev.NODE_PAIR_RESOLVED, payload)
    await publish_topic(node_topic(node_id), ev.NODE_PAIR_RESOLVED, payload)


async def node_approve(*, request_id: str, caller_scopes: list[str]) -> Node:
    """Approve a node's pending surface; a connected node may run it at once."""
    node = await db(pairing.node_pair_approve)(request_id=request_id, caller_scopes=caller_scopes)
    await invoke.live_update(node_id=node.node_id, approved=list(node.commands))
    await _node_resolved(request_id, node.node_id, "approved")
    return node


async def node_reject(*, request_id: str) -> NodePairingRequest:
    """Reject a node's pending surface (the approved one, if any, stays)."""
    request = await db(pairing.node_pair_reject)(request_id=request_id)
    await _node_resolved(request.request_id, request.node_id, "rejected")
    return request


async def node_remove(*, node_id: str) -> None:
    """Forget a node's approval: a connected node can run nothing until approved again."""
    await db(pairing.node_pair_remove)(node_id=node_id)
    await invoke.live_update(node_id=node_id, approved=None)
    await _node_resolved("", node_id, "removed")


async def _device_resolved(request_id: str, device_id: str, decision: str) -> None:
    payload = {"requestId": request_id, "deviceId": device_id}
    await publish(ev.DEVICE_PAIR_RESOLVED, {**payload, "decision": decision, "ts": now_ms()})


async def device_approve(*, request_id: str, scopes: list[str] | None = None) -> Device:
    """Approve a pending device (with ``scopes``, or those it asked for)."""
    device = await db(devices.device_pair_approve)(request_id=request_id, scopes=scopes)
    await _device_resolved(request_id, device.device_id, "approved")
    return device


async def device_reject(*, request_id: str) -> DevicePairingRequest:
    """Reject a pending device."""
    request = await db(devices.device_pair_reject)(request_id=request_id)
    await _device_resolved(request.request_id, request.device_id, "rejected")
    return request
