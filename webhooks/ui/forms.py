"""Control UI form for a webhook. It only parses and shows errors: writes go through the
webhook services, whose field-keyed ValidationErrors land next to the fields."""

from __future__ import annotations

from django import forms

from agents.models import Agent
from gateway.ui.forms import ServiceForm
from webhooks.models import WEBHOOK_ID, Preset, Webhook


class WebhookForm(ServiceForm):
    """Create or edit a webhook (``id`` only on create). Field names are the services'."""

    error_fields = {"agent": "agent_id"}

    id = forms.CharField(
        label="Webhook id",
        max_length=64,
        required=False,
        validators=[WEBHOOK_ID],
        help_text="the <id> in POST /webhooks/<id>; empty: made from the name",
    )
    name = forms.CharField(max_length=200)
    agent_id = forms.ChoiceField(label="Agent", help_text="the agent each delivery runs")
    enabled = forms.BooleanField(required=False, initial=True)
    preset = forms.ChoiceField(
        choices=Preset.choices,
        initial=Preset.NONE,
        help_text="gog-gmail: gogcli's Gmail watch pushes become a readable mail summary",
    )
    event_label = forms.CharField(
        label="Event label",
        max_length=200,
        required=False,
        help_text="names deliveries whose body has no 'event' field",
    )
    session_key = forms.CharField(
        label="Target session",
        max_length=500,
        required=False,
        help_text="deliver into this session of the agent; empty: the webhook's own thread",
    )
    ip_allowlist = forms.CharField(
        label="IP allowlist",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="addresses or CIDRs, one per line or comma-separated; empty: any address",
    )
    require_signature = forms.BooleanField(
        label="Require a signature",
        required=False,
        help_text="accept only Standard Webhooks signed deliveries (webhook-signature)",
    )
    rate_limit = forms.IntegerField(
        label="Rate limit",
        min_value=1,
        required=False,
        help_text="accepted deliveries per minute; empty: the gateway's default",
    )

    def __init__(self, *args, webhook: Webhook | None = None, **kwargs) -> None:
        self.webhook = webhook
        if webhook is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "id": webhook.id,
                "name": webhook.name,
                "agent_id": webhook.agent_id,
                "enabled": webhook.enabled,
                "preset": webhook.preset,
                "event_label": webhook.event_label,
                "session_key": webhook.session_key,
                "ip_allowlist": "\n".join(webhook.ip_allowlist or []),
                "require_signature": webhook.require_signature,
                "rate_limit": webhook.rate_limit,
            }
        super().__init__(*args, **kwargs)
        self.fields["agent_id"].choices = [
            (agent.id, f"{agent.id} — {agent.name}" if agent.name else agent.id)
            for agent in Agent.objects.order_by("id")
        ]
        if webhook is not None:
            # the id never changes; the value shown is the webhook's, not the POST's
            self.fields["id"].disabled = True

    def clean_ip_allowlist(self) -> list[str]:
        raw = self.cleaned_data.get("ip_allowlist") or ""
        return [entry.strip() for entry in raw.replace(",", "\n").splitlines() if entry.strip()]
