"""Webhooks (seed 001 "Webhooks (MVP)"): HTTP endpoints that start an agent run per delivery,
and the log of every delivery they received."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

WEBHOOK_ID = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,63}$",
    "lowercase letters, digits, '-' and '_', starting with a letter or digit (max 64)",
)


class Preset(models.TextChoices):
    """How a delivery's payload becomes the agent's prompt (``webhooks/prompts.py``)."""

    NONE = "none", "none (prompt/content/message field, else the payload)"
    GOG_GMAIL = "gog-gmail", "gog-gmail (gogcli Gmail watch)"


class Webhook(models.Model):
    """One integration: ``POST /webhooks/<id>`` starts a run of ``agent`` in the webhook's
    thread (``agent:<agentId>:webhook:<id>``) or in ``session_key``.

    The secret is never stored in the clear: ``secret_hash`` (SHA-256) checks a presented
    secret, ``secret_sealed`` (encrypted with the gateway's SECRET_KEY, ``secrets.py``) is the
    HMAC key that verifies signed deliveries. Neither is returned by any interface; the full
    secret is shown once, by ``webhook_create`` / ``webhook_rotate_secret``.
    """

    id = models.CharField(primary_key=True, max_length=64, validators=[WEBHOOK_ID])
    name = models.CharField(max_length=200)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="webhooks")
    secret_hash = models.CharField(max_length=64, editable=False)
    secret_sealed = models.TextField(editable=False)
    #: The last characters of the secret, to tell secrets apart in the UI.
    secret_hint = models.CharField(max_length=8, blank=True, editable=False)
    #: The secret before the last rotation, still valid until ``previous_secret_expires_at``.
    previous_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    previous_secret_sealed = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    event_label = models.CharField(max_length=200, blank=True)
    preset = models.CharField(max_length=20, choices=Preset.choices, default=Preset.NONE)
    #: Deliver into this existing session instead of the webhook's own thread.
    session_key = models.CharField(max_length=500, blank=True)
    #: Addresses and CIDRs allowed to deliver; empty: any address.
    ip_allowlist = models.JSONField(default=list, blank=True)
    require_signature = models.BooleanField(
        default=False, help_text="refuse deliveries without a valid Standard Webhooks signature"
    )
    #: Accepted deliveries per minute; empty: WINGMAN_WEBHOOK_RATE_LIMIT.
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def thread_key(self) -> str:
        """The session its runs go to."""
        return self.session_key or f"agent:{self.agent_id}:webhook:{self.id}"


class Delivery(models.Model):
    """One request to a webhook's endpoint and what became of it (errors included)."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    received_at = models.DateTimeField(default=timezone.now)
    source_ip = models.CharField(max_length=64, blank=True)
    #: The sender's ``webhook-id`` when it sent one, else one the gateway made up.
    delivery_id = models.CharField(max_length=200, blank=True)
    status = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=300, blank=True)
    run = models.ForeignKey(
        "agents.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    session_key = models.CharField(max_length=500, blank=True)
    body_size = models.PositiveIntegerField(default=0)
    signed = models.BooleanField(default=False)
    #: The raw payload of an accepted delivery (parsed JSON, or the text), kept with the
    #: run's user message; null for refused deliveries.
    payload = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["webhook", "-received_at"], name="delivery_webhook_recent"),
            models.Index(fields=["webhook", "delivery_id"], name="delivery_webhook_id"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.status} {self.reason}"

    @property
    def accepted(self) -> bool:
        return self.status in (200, 202)
