"""Webhook reads: the registry and the delivery log, as wire dicts (camelCase, ms times).

No secret is ever read here: ``secretHint`` (its last characters) tells secrets apart."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from webhooks.models import Delivery, Webhook


def _ms(dt) -> int | None:
    return int(dt.timestamp() * 1000) if dt else None


def endpoint_path(webhook_id: str) -> str:
    """Where deliveries are posted, relative to the gateway's base URL."""
    return f"/webhooks/{webhook_id}"


def webhook_data(webhook: Webhook) -> dict[str, Any]:
    """A webhook as every interface shows it (``webhooks.get``, ``GET /api/webhooks/<id>``)."""
    return {
        "id": webhook.id,
        "name": webhook.name,
        "agentId": webhook.agent_id,
        "enabled": webhook.enabled,
        "eventLabel": webhook.event_label or None,
        "preset": webhook.preset,
        "sessionId": webhook.session_key or None,
        "sessionKey": webhook.thread_key,
        "ipAllowlist": list(webhook.ip_allowlist or []),
        "requireSignature": webhook.require_signature,
        "rateLimit": webhook.rate_limit,
        "secretHint": webhook.secret_hint,
        "previousSecretExpiresAt": _ms(webhook.previous_secret_expires_at),
        "path": endpoint_path(webhook.id),
        "createdAt": _ms(webhook.created_at),
        "updatedAt": _ms(webhook.updated_at),
        "lastTriggeredAt": _ms(webhook.last_triggered_at),
    }


def webhook_queryset(*, agent_id: str | None = None) -> QuerySet[Webhook]:
    queryset = Webhook.objects.all()
    return queryset.filter(agent_id=agent_id) if agent_id else queryset


def webhook_list(*, agent_id: str | None = None) -> list[dict[str, Any]]:
    """Every webhook (of one agent), oldest first."""
    return [webhook_data(w) for w in webhook_queryset(agent_id=agent_id)]


def webhook_get(*, webhook_id: str) -> Webhook | None:
    """The webhook, or None."""
    return Webhook.objects.filter(pk=webhook_id).first()


def delivery_data(delivery: Delivery, *, payload: bool = False) -> dict[str, Any]:
    """One delivery log line (``payload``: include the stored payload of an accepted one)."""
    out = {
        "id": delivery.pk,
        "webhookId": delivery.webhook_id,
        "receivedAt": _ms(delivery.received_at),
        "sourceIp": delivery.source_ip,
        "deliveryId": delivery.delivery_id or None,
        "status": delivery.status,
        "reason": delivery.reason,
        "accepted": delivery.accepted,
        "runId": delivery.run_id,
        "sessionKey": delivery.session_key or None,
        "bodySize": delivery.body_size,
        "signed": delivery.signed,
    }
    if payload:
        out["payload"] = delivery.payload
    return out


def delivery_queryset(*, webhook_id: str) -> QuerySet[Delivery]:
    """A webhook's deliveries, newest first."""
    return Delivery.objects.filter(webhook_id=webhook_id)


def delivery_list(
    *, webhook_id: str, limit: int = 50, payload: bool = False
) -> list[dict[str, Any]]:
    """A webhook's most recent deliveries, newest first."""
    rows = delivery_queryset(webhook_id=webhook_id)[: max(0, limit)]
    return [delivery_data(d, payload=payload) for d in rows]


def delivery_for_run(*, run_id: str) -> Delivery | None:
    """The accepted delivery that started a run (its raw payload is the run's user input)."""
    return Delivery.objects.filter(run_id=run_id, status=202).first()
