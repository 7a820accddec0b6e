"""What device pairing (``devices.py``) and node surface pairing (``pairing.py``) share: a
pending request is opened under a row lock and resolved once; a paired row is changed only
under its lock."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from django.db import models
from django.utils import timezone

from gateway.protocol.errors import ErrorCode, GatewayError
from nodes.models import DevicePairingRequest, NodePairingRequest

Request = TypeVar("Request", DevicePairingRequest, NodePairingRequest)
Row = TypeVar("Row", bound=models.Model)


def open_request(model: type[Request], request_id: str) -> Request:
    """The pending, unexpired request ``request_id``, locked; INVALID_REQUEST otherwise."""
    request = (
        model.objects.select_for_update()
        .filter(request_id=request_id, status=model.Status.PENDING, expires_at__gt=timezone.now())
        .first()
    )
    if request is None:
        raise GatewayError(ErrorCode.INVALID_REQUEST, "unknown requestId")
    return request


def resolve_request(request: Request, status: str, now: datetime | None = None) -> Request:
    """Close ``request`` as ``status`` (approved or rejected) at ``now`` (default: now)."""
    request.status, request.resolved_at = status, now or timezone.now()
    request.save(update_fields=["status", "resolved_at"])
    return request


def locked_row(model: type[Row], label: str, key: str) -> Row:
    """The row whose primary key is ``key``, locked for update; INVALID_REQUEST
    ``unknown <label>: <key>`` if there is none."""
    row = model.objects.select_for_update().filter(pk=key).first()
    if row is None:
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"unknown {label}: {key}")
    return row
