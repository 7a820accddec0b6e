"""Between the wire and the services, for every interface (methods, REST, Control UI, CLI):
the protocol models' fields as service arguments, the services' field-keyed errors under
wire names, and a webhook looked up or ``NOT_FOUND``. Output shapes are the selectors'."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.webhooks import WebhookFields
from webhooks import selectors
from webhooks.models import Webhook

#: Model / service field → wire field, for errors the services raise keyed by model field.
WIRE_NAMES = {
    "agent": "agentId",
    "agent_id": "agentId",
    "event_label": "eventLabel",
    "session_key": "sessionId",
    "ip_allowlist": "ipAllowlist",
    "require_signature": "requireSignature",
    "rate_limit": "rateLimit",
    "grace_seconds": "graceSeconds",
}


def webhook_get(webhook_id: str) -> Webhook:
    """The webhook, or ``NOT_FOUND`` (a 404 in REST)."""
    webhook = selectors.webhook_get(webhook_id=webhook_id)
    if webhook is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"no webhook {webhook_id!r}")
    return webhook


def service_fields(params: WebhookFields, *, create: bool = False) -> dict[str, Any]:
    """The params the caller sent as the services' keyword arguments (update: only those;
    create: the services' defaults stand in for the ones left out)."""
    given = params.given()
    if create:
        given = {name: value for name, value in given.items() if value is not None}
        if getattr(params, "id", None) is not None:
            given["id"] = params.id
    if "session_key" in given:  # the model's "no target session" is ""
        given["session_key"] = given["session_key"] or ""
    return given


def wire_errors(error: ValidationError) -> dict[str, list[str]]:
    """``{wireField: [messages]}`` (``non_field_errors`` for an error without a field)."""
    if not hasattr(error, "error_dict"):
        return {"non_field_errors": error.messages}
    return {WIRE_NAMES.get(field, field): msgs for field, msgs in error.message_dict.items()}


def webhook_secret_data(webhook: Webhook, secret: str) -> dict[str, Any]:
    """``WebhookSecretResult``: the webhook and its secret in full (create and rotate only)."""
    return {"webhook": selectors.webhook_data(webhook), "secret": secret}
