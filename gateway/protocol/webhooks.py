"""Params and results of the ``webhooks.*`` methods (design/protocol.md, "Methods").

The same shapes are the REST API's (``/api/webhooks``; webhooks/api/serializers.py validates
with these models), so both APIs take the same input. A webhook's secret is in a result only
twice: when the webhook is created and when its secret is rotated.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from gateway.protocol.base import Frame

#: A webhook id: the ``<id>`` of ``POST /webhooks/<id>`` (a slug, like an agent id).
WEBHOOK_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Preset = Literal["none", "gog-gmail"]

WebhookId = Field(min_length=1, max_length=64, pattern=WEBHOOK_ID_PATTERN)


class WebhookFields(Frame):
    """What a caller may set on a webhook (create takes them all, update any of them)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, alias="agentId", min_length=1, max_length=64)
    enabled: bool | None = None
    event_label: str | None = Field(default=None, alias="eventLabel", max_length=200)
    preset: Preset | None = None
    session_key: str | None = Field(
        default=None,
        alias="sessionId",
        max_length=500,
        description="deliver into this existing session (its key) instead of the webhook's "
        "own thread; null: the thread",
    )
    ip_allowlist: list[str] | None = Field(
        default=None,
        alias="ipAllowlist",
        max_length=100,
        description="addresses and CIDRs allowed to deliver; empty: any address",
    )
    require_signature: bool | None = Field(
        default=None,
        alias="requireSignature",
        description="accept only Standard Webhooks signed deliveries",
    )
    rate_limit: int | None = Field(
        default=None,
        alias="rateLimit",
        ge=1,
        le=1_000_000,
        description="accepted deliveries per minute; null: the gateway's default",
    )

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("ip_allowlist")
    @classmethod
    def _entries(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not 0 < len(entry) <= 64 for entry in value):
            raise ValueError("each entry is an address or CIDR (1-64 characters)")
        return value

    @field_validator(
        "name", "agent_id", "enabled", "event_label", "preset", "ip_allowlist", "require_signature"
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # a default (left out) is not validated: only an explicit null gets here
        if value is None:
            raise ValueError("must not be null")
        return value

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, by their Python names (``None``: no target session,
        the default rate limit)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "id"}


class WebhooksListParams(Frame):
    """``webhooks.list {agentId?}``: every webhook (of one agent)."""

    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)


class WebhookIdParams(Frame):
    """``webhooks.get|delete {id}``."""

    id: str = WebhookId


class WebhooksCreateParams(WebhookFields):
    """``webhooks.create``: ``id`` is generated from the name when left out."""

    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=WEBHOOK_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)


class WebhookReplaceBody(WebhookFields):
    """``PUT /api/webhooks/<id>``: every setting (the ones left out get their defaults)."""

    name: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(alias="agentId", min_length=1, max_length=64)


class WebhooksUpdateParams(WebhookFields):
    """``webhooks.update {id, ...}``: changes only the fields given."""

    id: str = WebhookId


class WebhooksRotateParams(Frame):
    """``webhooks.rotateSecret {id, graceSeconds?}``: a new secret; the previous one keeps
    verifying for ``graceSeconds`` (default: the gateway's ``webhooks.rotationGrace``)."""

    id: str = WebhookId
    grace_seconds: int | None = Field(default=None, alias="graceSeconds", ge=0, le=30 * 86_400)


# results ---------------------------------------------------------------------------------
class WebhookResult(Frame):
    """A webhook as every API shows it (never its secret)."""

    id: str
    name: str
    agent_id: str = Field(alias="agentId")
    enabled: bool
    event_label: str | None = Field(alias="eventLabel")
    preset: Preset
    session_id: str | None = Field(alias="sessionId", description="the target session, if any")
    session_key: str = Field(alias="sessionKey", description="where its deliveries go")
    ip_allowlist: list[str] = Field(alias="ipAllowlist")
    require_signature: bool = Field(alias="requireSignature")
    rate_limit: int | None = Field(alias="rateLimit")
    secret_hint: str = Field(alias="secretHint", description="the secret's last characters")
    previous_secret_expires_at: int | None = Field(
        alias="previousSecretExpiresAt",
        description="after a rotation: until when the previous secret still verifies (ms)",
    )
    path: str = Field(description="the endpoint: POST <gateway URL><path>")
    created_at: int = Field(alias="createdAt", description="ms since the epoch")
    updated_at: int = Field(alias="updatedAt")
    last_triggered_at: int | None = Field(alias="lastTriggeredAt")


class WebhookSecretResult(Frame):
    """``webhooks.create`` / ``webhooks.rotateSecret``: the webhook and its secret, shown
    this once (only a verifier of it is kept)."""

    webhook: WebhookResult
    secret: str


class WebhooksListResult(Frame):
    webhooks: list[WebhookResult]


class WebhookDeletedResult(Frame):
    id: str
    deleted: Literal[True]


class DeliveryResult(Frame):
    """One line of a webhook's delivery log (accepted or refused)."""

    id: int
    webhook_id: str = Field(alias="webhookId")
    received_at: int = Field(alias="receivedAt")
    source_ip: str = Field(alias="sourceIp")
    delivery_id: str | None = Field(alias="deliveryId")
    status: int = Field(description="the HTTP status the sender got")
    reason: str
    accepted: bool
    signed: bool
    run_id: str | None = Field(alias="runId")
    session_key: str | None = Field(alias="sessionKey")
    body_size: int = Field(alias="bodySize")
