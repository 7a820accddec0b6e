"""Node surface pairing: a node's declared caps and commands wait for an operator.

A node that connects with a new surface (or one wider than what was approved) gets a
pending :class:`~nodes.models.NodePairingRequest`; until it is approved its live command
surface is what was approved before (nothing for a new node). Requests expire after
:data:`REQUEST_TTL`; the node's next connect asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from gateway.security import scopes
from nodes.models import Node, NodePairingRequest
from nodes.selectors import required_approve_scopes
from nodes.services.requests import locked_row, open_request, resolve_request

REQUEST_TTL = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Surface:
    """What a node connection declared."""

    node_id: str
    display_name: str
    platform: str
    version: str
    client_id: str
    client_mode: str
    device_family: str
    remote_ip: str
    path_env: str
    caps: list[str]
    commands: list[str]
    permissions: dict[str, bool]

    def fields(self) -> dict[str, Any]:
        """The descriptive fields stored on nodes and requests."""
        return {
            "display_name": self.display_name,
            "platform": self.platform,
            "version": self.version,
            "client_id": self.client_id,
            "client_mode": self.client_mode,
            "device_family": self.device_family,
            "remote_ip": self.remote_ip,
            "path_env": self.path_env,
        }


def node_connected(*, surface: Surface) -> tuple[Node, NodePairingRequest | None, bool]:
    """Record a node's connect: ``(node, request, created)`` where ``request`` is the pending
    request for a surface beyond the approved one (``created``: it is new, publish it)."""
    now = timezone.now()
    with transaction.atomic():
        node, _ = Node.objects.select_for_update().get_or_create(
            node_id=surface.node_id, defaults=surface.fields()
        )
        for name, value in surface.fields().items():
            if name != "display_name" or not node.display_name:
                setattr(node, name, value)
        node.last_connected_at = now
        node.save()
        widened = node.approved_at is None or not (
            set(surface.commands) <= set(node.commands) and set(surface.caps) <= set(node.caps)
        )
        if not widened:
            return node, None, False
        request, created = _request_for(surface, now)
    return node, request, created


def _request_for(surface: Surface, now) -> tuple[NodePairingRequest, bool]:
    pending = NodePairingRequest.objects.filter(
        node_id=surface.node_id, status=NodePairingRequest.Status.PENDING, expires_at__gt=now
    )
    for request in pending:
        if set(request.commands) == set(surface.commands) and set(request.caps) == set(
            surface.caps
        ):
            return request, False
    pending.update(status=NodePairingRequest.Status.EXPIRED, resolved_at=now)
    request = NodePairingRequest.objects.create(
        node_id=surface.node_id,
        caps=surface.caps,
        commands=surface.commands,
        permissions=surface.permissions,
        expires_at=now + REQUEST_TTL,
        **surface.fields(),
    )
    return request, True


def node_pair_approve(*, request_id: str, caller_scopes: list[str]) -> Node:
    """Approve a pending surface: the node's approved caps/commands become the request's."""
    now = timezone.now()
    with transaction.atomic():
        request = open_request(NodePairingRequest, request_id)
        for needed in required_approve_scopes(request.commands):
            scopes.check(caller_scopes, needed, "node.pair.approve")
        node, _ = Node.objects.select_for_update().get_or_create(node_id=request.node_id)
        node.caps, node.commands = list(request.caps), list(request.commands)
        node.permissions, node.approved_at = dict(request.permissions), now
        node.save()
        resolve_request(request, NodePairingRequest.Status.APPROVED, now)
    return node


def node_pair_reject(*, request_id: str) -> NodePairingRequest:
    """Reject a pending surface (the approved one, if any, stays)."""
    with transaction.atomic():
        request = open_request(NodePairingRequest, request_id)
        return resolve_request(request, NodePairingRequest.Status.REJECTED)


def _node(node_id: str) -> Node:
    return locked_row(Node, "nodeId", node_id)


def node_pair_remove(*, node_id: str) -> None:
    """Forget a node's approval and its pending requests (it asks again on connect)."""
    with transaction.atomic():
        _node(node_id).delete()
        NodePairingRequest.objects.filter(
            node_id=node_id, status=NodePairingRequest.Status.PENDING
        ).update(status=NodePairingRequest.Status.REJECTED, resolved_at=timezone.now())


def node_rename(*, node_id: str, display_name: str) -> Node:
    """Set the name operators see (kept over the node's own displayName)."""
    with transaction.atomic():
        node = _node(node_id)
        node.display_name = display_name
        node.save(update_fields=["display_name"])
    return node


def node_host_stats(*, node_id: str, stats: dict[str, Any]) -> None:
    """Store the host stats a node reported (``node.event node.host.stats``)."""
    Node.objects.filter(node_id=node_id).update(host_stats=stats, host_stats_at=timezone.now())
