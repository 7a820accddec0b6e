"""Shapes of the webhooks REST API: what comes in (``*Input``) and what goes out (``*Output``).

Inputs validate with the ``webhooks.*`` methods' pydantic models (gateway/protocol/webhooks.py),
so the WebSocket and REST APIs take the same input; the serializer fields only declare that
shape for the OpenAPI schema (tests/webhooks/test_api.py keeps them in step). Outputs render
through ``webhooks/wire.py``, the methods' shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from rest_framework import serializers

from gateway.api.inputs import TRANSPORT_FIELDS, ProtocolInput, protocol_input
from gateway.protocol.webhooks import (
    WEBHOOK_ID_PATTERN,
    WebhookFields,
    WebhookReplaceBody,
    WebhooksCreateParams,
    WebhooksRotateParams,
)
from webhooks import selectors

_PRESETS = ["none", "gog-gmail"]


class _SettingsInput(ProtocolInput):
    """The settings every write takes (declared for the schema; pydantic validates)."""

    #: the protocol model that validates this input
    model: type[BaseModel] = WebhookFields

    name = serializers.CharField(max_length=200)
    agentId = serializers.CharField(max_length=64, help_text="the agent each delivery runs")
    enabled = serializers.BooleanField(required=False, default=True)
    eventLabel = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="label when the body has no event",
    )
    preset = serializers.ChoiceField(choices=_PRESETS, required=False, default="none")
    sessionId = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=500,
        help_text="deliver into this session (its key) of the agent instead of the webhook's "
        "own thread",
    )
    ipAllowlist = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=100,
        help_text="addresses and CIDRs allowed to deliver; empty: any",
    )
    requireSignature = serializers.BooleanField(
        required=False, default=False, help_text="accept only Standard Webhooks signed deliveries"
    )
    rateLimit = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="accepted deliveries per minute; null: the gateway's default",
    )


class WebhookCreateInput(_SettingsInput):
    """``POST /api/webhooks``: ``id`` defaults to a slug of the name."""

    model = WebhooksCreateParams

    id = serializers.RegexField(WEBHOOK_ID_PATTERN, required=False, max_length=64)


class WebhookReplaceInput(_SettingsInput):
    """``PUT``: every setting; the ones left out get their defaults."""

    model = WebhookReplaceBody


class WebhookPatchInput(_SettingsInput):
    """``PATCH``: only the settings given change (``{"enabled": false}`` disables it)."""

    model = WebhookFields

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class RotateInput(serializers.Serializer):
    """``POST /api/webhooks/<id>/rotate-secret``."""

    graceSeconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="how long the previous secret keeps verifying (default: the gateway's, 24 h)",
    )

    def to_internal_value(self, data) -> WebhooksRotateParams:
        if isinstance(data, Mapping):
            data = {k: v for k, v in data.items() if k not in TRANSPORT_FIELDS}
            if "id" in data:  # the path names the webhook
                raise serializers.ValidationError({"id": ["unknown field"]})
            data = {**data, "id": self.context["webhook_id"]}
        return protocol_input(WebhooksRotateParams, data)


# outputs ---------------------------------------------------------------------------------
class WebhookOutput(serializers.Serializer):
    """A webhook (never its secret)."""

    id = serializers.CharField()
    name = serializers.CharField()
    agentId = serializers.CharField()
    enabled = serializers.BooleanField()
    eventLabel = serializers.CharField(allow_null=True)
    preset = serializers.ChoiceField(choices=_PRESETS)
    sessionId = serializers.CharField(allow_null=True, help_text="the target session, if any")
    sessionKey = serializers.CharField(help_text="the session its deliveries go to")
    ipAllowlist = serializers.ListField(child=serializers.CharField())
    requireSignature = serializers.BooleanField()
    rateLimit = serializers.IntegerField(allow_null=True)
    secretHint = serializers.CharField(help_text="the secret's last characters")
    previousSecretExpiresAt = serializers.IntegerField(
        allow_null=True, help_text="after a rotation: until when the previous secret verifies"
    )
    path = serializers.CharField(help_text="the endpoint: POST <gateway URL><path>")
    createdAt = serializers.IntegerField(help_text="ms since the epoch")
    updatedAt = serializers.IntegerField()
    lastTriggeredAt = serializers.IntegerField(allow_null=True)

    def to_representation(self, instance) -> dict[str, Any]:
        return selectors.webhook_data(instance)


class WebhookSecretOutput(serializers.Serializer):
    """The webhook and its secret in full: shown by create and rotate-secret only."""

    webhook = WebhookOutput()
    secret = serializers.CharField()


class DeliveryOutput(serializers.Serializer):
    """One delivery to the endpoint and what became of it (refused ones too)."""

    id = serializers.IntegerField()
    webhookId = serializers.CharField()
    receivedAt = serializers.IntegerField()
    sourceIp = serializers.CharField()
    deliveryId = serializers.CharField(allow_null=True)
    status = serializers.IntegerField(help_text="the HTTP status the sender got")
    reason = serializers.CharField()
    accepted = serializers.BooleanField()
    signed = serializers.BooleanField()
    runId = serializers.CharField(allow_null=True)
    sessionKey = serializers.CharField(allow_null=True)
    bodySize = serializers.IntegerField()

    def to_representation(self, instance) -> dict[str, Any]:
        return selectors.delivery_data(instance)


class TestOutput(serializers.Serializer):
    """What the real endpoint answered to the sample delivery."""

    url = serializers.CharField()
    status = serializers.IntegerField(help_text="the endpoint's HTTP status (202: accepted)")
    accepted = serializers.BooleanField()
    deliveryId = serializers.CharField()
    runId = serializers.CharField(allow_null=True)
    sessionKey = serializers.CharField(allow_null=True)
    response = serializers.JSONField(help_text="the endpoint's response body")
