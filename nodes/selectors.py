"""Reads: node and device rows in the shapes the OpenClaw CLI reads, and live node state.

A connected node has a live entry in the shared cache (``nodes:live:<nodeId>``: its
connection, declared surface and the commands it may run now), written by
``nodes/services/live.py`` on every process, so any gateway process can answer for it.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone

from nodes.models import Device, DevicePairingRequest, Node, NodePairingRequest

#: Commands that run programs on the node: invoking or approving them needs ``operator.admin``.
ADMIN_COMMANDS = frozenset({"system.run", "system.run.prepare"})


def required_approve_scopes(commands: list[str]) -> list[str]:
    """What an operator needs to approve a surface (``requiredApproveScopes``)."""
    if ADMIN_COMMANDS & set(commands):
        return ["operator.pairing", "operator.admin"]
    return ["operator.pairing"]


def live_key(node_id: str) -> str:
    return f"nodes:live:{node_id}"


def live_entry(node_id: str) -> dict[str, Any] | None:
    """The node's live entry, or None when it is not connected to any gateway process."""
    return cache.get(live_key(node_id))


def _ms(value) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _pending_by_node() -> dict[str, NodePairingRequest]:
    now = timezone.now()
    rows = NodePairingRequest.objects.filter(
        status=NodePairingRequest.Status.PENDING, expires_at__gt=now
    ).order_by("created_at")
    return {r.node_id: r for r in rows}


def pending_row(request: NodePairingRequest) -> dict[str, Any]:
    """A ``node.pair.list`` pending entry (and the ``node.pair.requested`` payload)."""
    return {
        "requestId": request.request_id,
        "nodeId": request.node_id,
        "clientId": request.client_id,
        "clientMode": request.client_mode,
        "displayName": request.display_name,
        "platform": request.platform,
        "version": request.version,
        "deviceFamily": request.device_family,
        "caps": list(request.caps),
        "commands": list(request.commands),
        "requiredApproveScopes": required_approve_scopes(request.commands),
        "permissions": dict(request.permissions),
        "remoteIp": request.remote_ip,
        "silent": False,
        "ts": _ms(request.created_at),
    }


def paired_row(node: Node) -> dict[str, Any]:
    """A ``node.pair.list`` paired entry (and ``node.pair.approve``'s ``node``)."""
    row = {
        "nodeId": node.node_id,
        "clientId": node.client_id,
        "clientMode": node.client_mode,
        "displayName": node.display_name,
        "platform": node.platform,
        "version": node.version,
        "deviceFamily": node.device_family,
        "caps": list(node.caps),
        "commands": list(node.commands),
        "remoteIp": node.remote_ip,
        "createdAtMs": _ms(node.created_at),
        "approvedAtMs": _ms(node.approved_at),
        "lastConnectedAtMs": _ms(node.last_connected_at),
    }
    return {k: v for k, v in row.items() if v is not None}


def node_pair_list() -> dict[str, Any]:
    """``node.pair.list``: pending surfaces and approved nodes."""
    pending = [pending_row(r) for r in _pending_by_node().values()]
    paired = [paired_row(n) for n in Node.objects.filter(approved_at__isnull=False)]
    return {"pending": pending, "paired": paired}


def _approval_state(node: Node, pending: NodePairingRequest | None) -> str:
    if pending is not None:
        return "pending-reapproval" if node.approved_at else "pending-approval"
    return "approved" if node.approved_at else "unapproved"


def node_row(node: Node, pending: NodePairingRequest | None) -> dict[str, Any]:
    """A ``node.list`` / ``node.describe`` row."""
    live = live_entry(node.node_id)
    commands = list(node.commands) if node.approved_at else []
    if live is not None:
        commands = list(live.get("allowed", []))
    row = {**paired_row(node), "commands": commands, "pathEnv": node.path_env}
    row["permissions"] = dict(node.permissions)
    row["approvalState"] = _approval_state(node, pending)
    if pending is not None:
        row["pendingRequestId"] = pending.request_id
        row["pendingDeclaredCaps"] = list(pending.caps)
        row["pendingDeclaredCommands"] = list(pending.commands)
    if live is not None:
        row["connectedAtMs"] = live.get("connectedAtMs")
    if node.host_stats is not None:
        row["hostStats"] = {**node.host_stats, "ts": _ms(node.host_stats_at)}
    row["paired"] = node.approved_at is not None
    row["connected"] = live is not None
    return row


def node_list() -> list[dict[str, Any]]:
    """``node.list`` rows: every known node, connected or not."""
    pending = _pending_by_node()
    return [node_row(n, pending.get(n.node_id)) for n in Node.objects.order_by("created_at")]


def node_describe(*, node_id: str) -> dict[str, Any] | None:
    """``node.describe``: one row, or None."""
    node = Node.objects.filter(node_id=node_id).first()
    if node is None:
        return None
    return node_row(node, _pending_by_node().get(node_id))


def node_resolve(*, ref: str) -> Node | None:
    """A node by id, display name or an id prefix of 6+ characters (agent node tools)."""
    node = Node.objects.filter(node_id=ref).first() or Node.objects.filter(display_name=ref).first()
    if node is None and len(ref) >= 6:
        node = Node.objects.filter(node_id__startswith=ref).first()
    return node


def device_row(device: Device) -> dict[str, Any]:
    """A paired device (no token, only whether one is issued)."""
    return {
        "deviceId": device.device_id,
        "publicKey": device.public_key,
        "role": device.role,
        "scopes": list(device.scopes),
        "displayName": device.display_name,
        "platform": device.platform,
        "clientId": device.client_id,
        "clientMode": device.client_mode,
        "address": device.address,
        "firstSeenMs": _ms(device.first_seen),
        "lastSeenMs": _ms(device.last_seen),
        "approvedAtMs": _ms(device.approved_at),
        "hasToken": bool(device.token_hash),
    }


def device_request_row(request: DevicePairingRequest) -> dict[str, Any]:
    """A pending device pairing request."""
    return {
        "requestId": request.request_id,
        "deviceId": request.device_id,
        "publicKey": request.public_key,
        "role": request.role,
        "scopes": list(request.scopes),
        "displayName": request.display_name,
        "platform": request.platform,
        "clientId": request.client_id,
        "clientMode": request.client_mode,
        "remoteIp": request.remote_ip,
        "ts": _ms(request.created_at),
    }


def device_pair_list() -> dict[str, Any]:
    """``device.pair.list``: pending requests and paired devices."""
    pending = DevicePairingRequest.objects.filter(
        status=DevicePairingRequest.Status.PENDING, expires_at__gt=timezone.now()
    ).order_by("created_at")
    return {
        "pending": [device_request_row(r) for r in pending],
        "paired": [device_row(d) for d in Device.objects.order_by("first_seen")],
    }


def stored_counts() -> dict[str, Any]:
    """Counts for the Status page."""
    return {"devices": Device.objects.count(), "nodes": Node.objects.count()}
