"""Device pairing and device tokens (seed 004): who may connect with which key and scopes.

A device connecting from loopback with valid gateway credentials is approved silently;
any other unpaired device gets a pending :class:`~nodes.models.DevicePairingRequest` and
``NOT_PAIRED`` (details ``{code: "PAIRING_REQUIRED", requestId}``) until an operator
approves it. An approved device is issued a device token (shown once in
``hello-ok.auth.deviceToken``, stored as its sha256) that it may send instead of the
gateway secret; it carries the scopes the device was approved with.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from gateway.protocol.errors import ErrorCode, GatewayError
from nodes.models import Device, DevicePairingRequest
from nodes.services.requests import locked_row, open_request, resolve_request

#: How long a device pairing request waits for an operator.
REQUEST_TTL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DeviceClaim:
    """A verified device at the handshake."""

    device_id: str
    public_key: str
    role: str
    scopes: list[str]
    display_name: str
    platform: str
    client_id: str
    client_mode: str
    ip: str | None
    credential: str
    #: Pair without an operator even off loopback (a browser with pairingRequired off).
    unattended: bool = False
    #: What it asked for (a pending request shows these to the operator; ``scopes`` is what
    #: its credential grants now, all a silent pairing ever gets). None: ``scopes``.
    requested: list[str] | None = None


def token_hash(token: str) -> str:
    """How a device token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_loopback(ip: str | None) -> bool:
    """127.0.0.0/8 or ::1."""
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def device_token_scopes(*, device_id: str, token: str) -> list[str] | None:
    """The approved scopes when ``token`` is this device's current token, else None."""
    device = Device.objects.filter(device_id=device_id).first()
    if device is None or not device.token_hash:
        return None
    if not hmac.compare_digest(device.token_hash, token_hash(token)):
        return None
    return list(device.scopes)


def device_seen(*, device_id: str) -> None:
    """A device's connection ended: it was last seen now (``last_seen`` is also set when it
    connects, so a connected device's is its connect time)."""
    Device.objects.filter(device_id=device_id).update(last_seen=timezone.now())


def _issue_token(device: Device) -> str:
    token = secrets.token_urlsafe(32)
    device.token_hash = token_hash(token)
    device.token_rotated_at = timezone.now()
    return token


def device_admit(*, claim: DeviceClaim) -> tuple[dict[str, Any], DevicePairingRequest | None]:
    """Admit a verified device: ``({deviceToken?}, None)``, or ``({}, request)`` for a new
    pending request (the caller publishes it and refuses the connection)."""
    now = timezone.now()
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(device_id=claim.device_id).first()
        known = device is not None and device.public_key == claim.public_key
        if known and device.role == claim.role:
            device.last_seen, device.address = now, claim.ip or ""
            extra: dict[str, Any] = {}
            if not device.token_hash:
                extra["deviceToken"] = _issue_token(device)
            device.save()
            return extra, None
        if claim.unattended or (is_loopback(claim.ip) and claim.credential == "shared"):
            device = _store_device(claim, now)
            token = _issue_token(device)
            device.save()
            return {"deviceToken": token}, None
        return {}, _pending_request(claim, now)


def _store_device(claim: DeviceClaim, now) -> Device:
    device, _ = Device.objects.update_or_create(
        device_id=claim.device_id,
        defaults={
            "public_key": claim.public_key,
            "role": claim.role,
            "scopes": claim.scopes,
            "display_name": claim.display_name,
            "platform": claim.platform,
            "client_id": claim.client_id,
            "client_mode": claim.client_mode,
            "address": claim.ip or "",
            "last_seen": now,
            "approved_at": now,
        },
    )
    return device


def _pending_request(claim: DeviceClaim, now) -> DevicePairingRequest:
    live = DevicePairingRequest.objects.filter(
        device_id=claim.device_id,
        public_key=claim.public_key,
        role=claim.role,
        status=DevicePairingRequest.Status.PENDING,
        expires_at__gt=now,
    ).first()
    if live is not None:
        return live
    return DevicePairingRequest.objects.create(
        device_id=claim.device_id,
        public_key=claim.public_key,
        role=claim.role,
        scopes=claim.requested if claim.requested is not None else claim.scopes,
        display_name=claim.display_name,
        platform=claim.platform,
        client_id=claim.client_id,
        client_mode=claim.client_mode,
        remote_ip=claim.ip or "",
        expires_at=now + REQUEST_TTL,
    )


def not_paired(request: DevicePairingRequest) -> GatewayError:
    """The refusal a device awaiting approval gets (the node host retries after a while)."""
    return GatewayError(
        ErrorCode.NOT_PAIRED,
        f"device pairing required (requestId {request.request_id}); "
        f"approve it with device.pair.approve",
        details={
            "code": "PAIRING_REQUIRED",
            "requestId": request.request_id,
            "deviceId": request.device_id,
            "recommendedNextStep": "wait_then_retry",
        },
    )


def device_pair_approve(*, request_id: str, scopes: list[str] | None = None) -> Device:
    """Approve a pending device (with ``scopes``, or those it asked for)."""
    now = timezone.now()
    with transaction.atomic():
        request = open_request(DevicePairingRequest, request_id)
        claim = DeviceClaim(
            device_id=request.device_id,
            public_key=request.public_key,
            role=request.role,
            scopes=list(scopes if scopes is not None else request.scopes),
            display_name=request.display_name,
            platform=request.platform,
            client_id=request.client_id,
            client_mode=request.client_mode,
            ip=request.remote_ip,
            credential="approval",
        )
        device = _store_device(claim, now)
        resolve_request(request, DevicePairingRequest.Status.APPROVED, now)
    return device


def device_pair_reject(*, request_id: str) -> DevicePairingRequest:
    """Reject a pending device."""
    with transaction.atomic():
        request = open_request(DevicePairingRequest, request_id)
        return resolve_request(request, DevicePairingRequest.Status.REJECTED)


def _device(device_id: str) -> Device:
    return locked_row(Device, "deviceId", device_id)


def device_remove(*, device_id: str) -> None:
    """Forget a paired device (its token stops working; it must pair again)."""
    with transaction.atomic():
        _device(device_id).delete()


def device_token_rotate(*, device_id: str) -> str:
    """A new device token (returned once); the old one stops working."""
    with transaction.atomic():
        device = _device(device_id)
        token = _issue_token(device)
        device.save(update_fields=["token_hash", "token_rotated_at"])
    return token


def device_token_revoke(*, device_id: str) -> None:
    """Revoke the device's token (it can still connect with the gateway secret, and then
    gets a new token)."""
    with transaction.atomic():
        device = _device(device_id)
        device.token_hash, device.token_rotated_at = "", timezone.now()
        device.save(update_fields=["token_hash", "token_rotated_at"])
