"""Paired devices, device pairing requests, nodes and node surface pairing requests."""

from __future__ import annotations

import uuid

from django.db import models


def _request_id() -> str:
    return str(uuid.uuid4())


class DeviceClaimFields(models.Model):
    """What a device claims at the handshake: stored as requested
    (:class:`DevicePairingRequest`) and, once approved, on the device (:class:`Device`);
    ``nodes/services/devices.py``'s ``DeviceClaim`` carries them."""

    public_key = models.CharField(max_length=128)
    role = models.CharField(max_length=16, default="operator")
    scopes = models.JSONField(default=list)
    display_name = models.CharField(max_length=256, blank=True, default="")
    platform = models.CharField(max_length=64, blank=True, default="")
    client_id = models.CharField(max_length=128, blank=True, default="")
    client_mode = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        abstract = True


class Device(DeviceClaimFields):
    """A device identity (Ed25519 key) the gateway approved, with its role and scopes."""

    device_id = models.CharField(max_length=64, primary_key=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    address = models.CharField(max_length=64, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    #: sha256 of the device token (the token itself is shown once, in hello-ok.auth).
    token_hash = models.CharField(max_length=64, blank=True, default="")
    token_rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.display_name or self.device_id[:12]} ({self.role})"


class DevicePairingRequest(DeviceClaimFields):
    """A device that connected unpaired (not loopback): waits for an operator."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    request_id = models.CharField(max_length=64, primary_key=True, default=_request_id)
    device_id = models.CharField(max_length=64, db_index=True)
    remote_ip = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.request_id} ({self.status})"


class NodeSurfaceFields(models.Model):
    """What a node connection declares: stored as requested (:class:`NodePairingRequest`)
    and, once approved, on the node (:class:`Node`); ``nodes/services/pairing.py``'s
    ``Surface.fields()`` names the descriptive ones."""

    display_name = models.CharField(max_length=256, blank=True, default="")
    platform = models.CharField(max_length=64, blank=True, default="")
    version = models.CharField(max_length=64, blank=True, default="")
    client_id = models.CharField(max_length=128, blank=True, default="")
    client_mode = models.CharField(max_length=64, blank=True, default="")
    device_family = models.CharField(max_length=64, blank=True, default="")
    remote_ip = models.CharField(max_length=64, blank=True, default="")
    path_env = models.TextField(blank=True, default="")
    caps = models.JSONField(default=list)
    commands = models.JSONField(default=list)
    permissions = models.JSONField(default=dict)

    class Meta:
        abstract = True


class Node(NodeSurfaceFields):
    """A machine offering commands (``role: "node"``): its approved command surface."""

    node_id = models.CharField(max_length=128, primary_key=True)
    #: Approved by an operator at least once (its surface fields are then the approved one).
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_connected_at = models.DateTimeField(null=True, blank=True)
    host_stats = models.JSONField(null=True, blank=True)
    host_stats_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.display_name or self.node_id[:12]


class NodePairingRequest(NodeSurfaceFields):
    """A node's declared surface (caps, commands) waiting for approval."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"

    request_id = models.CharField(max_length=64, primary_key=True, default=_request_id)
    node_id = models.CharField(max_length=128, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.request_id} ({self.status})"
