"""The operator's view of webhooks and their delivery log.

Writes go through the services: a new webhook gets its secret from ``webhook_create`` (shown
once, in the confirmation message), edits are checked by ``webhook_check`` like the API's,
and the rotate action calls ``webhook_rotate_secret``. Secrets are never shown otherwise:
the stored hash and sealed key are not fields of any form.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from webhooks import selectors, services
from webhooks.models import Delivery, Webhook
from webhooks.services.webhooks import webhook_check

#: How many recent deliveries the webhook's page lists (the Delivery list has them all).
INLINE_DELIVERIES = 50


class WebhookForm(forms.ModelForm):
    """The admin's webhook form, checked by the same rules as the API and the Control UI."""

    class Meta:
        model = Webhook
        fields = ("id", "name", "agent", *services.WEBHOOK_FIELDS[2:])

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.instance.agent_id is None:
            return  # the required agent is already reported next to its field
        try:
            webhook_check(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


class DeliveryInline(admin.TabularInline):
    """The webhook's most recent deliveries with their outcome (read-only)."""

    model = Delivery
    extra = 0
    can_delete = False
    fields = ("received_at", "status", "reason", "source_ip", "delivery_id", "signed", "run_link")
    readonly_fields = fields
    ordering = ("-received_at", "-id")
    verbose_name_plural = f"recent deliveries (last {INLINE_DELIVERIES})"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        webhook_id = (request.resolver_match.kwargs or {}).get("object_id")
        if webhook_id is None:
            return queryset.none()
        recent = selectors.delivery_queryset(webhook_id=webhook_id).values_list("pk", flat=True)
        return queryset.filter(pk__in=list(recent[:INLINE_DELIVERIES]))

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="run")
    def run_link(self, obj: Delivery):
        if not obj.run_id:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:agents_run_change", args=[obj.run_id]), obj.run_id
        )


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_filter = ("enabled", "preset", "require_signature")
    search_fields = ("id", "name", "agent__id", "event_label")
    readonly_fields = ("secret_hint", "previous_secret_expires_at", "created_at", "updated_at")
    inlines = [DeliveryInline]
    actions = ["rotate_secret", "enable", "disable"]

    def get_list_display(self, request):
        """The columns, with the endpoint's full URL as this request reaches the gateway."""
        base = request.build_absolute_uri("/").rstrip("/")

        @admin.display(description="endpoint URL")
        def endpoint_url(obj: Webhook):
            return format_html("<code>POST {}{}</code>", base, selectors.endpoint_path(obj.id))

        return ("id", "name", "agent", "enabled", "preset", endpoint_url, "last_triggered_at")

    def get_readonly_fields(self, request, obj=None):
        return ("id", *self.readonly_fields) if obj else self.readonly_fields

    def save_model(self, request, obj: Webhook, form, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.WEBHOOK_FIELDS[2:]}
        fields |= {"name": obj.name, "agent_id": obj.agent_id}
        if change:
            services.webhook_update(webhook=obj, **fields)
            return
        created, secret = services.webhook_create(id=obj.id, **fields)
        obj.pk = created.pk
        self.message_user(
            request,
            f"Secret of {created.id} (copy it now: it is shown this once): {secret}",
            messages.WARNING,
        )

    @admin.action(permissions=["change"], description="Rotate the secret (the old one works 24 h)")
    def rotate_secret(self, request, queryset):
        for webhook in queryset:
            rotated, secret = services.webhook_rotate_secret(webhook=webhook)
            until = rotated.previous_secret_expires_at
            note = f"; the previous one works until {until:%Y-%m-%d %H:%M %Z}" if until else ""
            self.message_user(
                request,
                f"New secret of {rotated.id} (shown this once): {secret}{note}",
                messages.WARNING,
            )

    @admin.action(permissions=["change"], description="Enable the selected webhooks")
    def enable(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(permissions=["change"], description="Disable the selected webhooks (403)")
    def disable(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        for webhook in queryset:
            services.webhook_update(webhook=webhook, enabled=enabled)
        state = "enabled" if enabled else "disabled"
        self.message_user(request, f"{queryset.count()} webhook(s) {state}.")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Every delivery to every webhook, refused ones included (read-only)."""

    list_display = ("received_at", "webhook", "status", "reason", "source_ip", "run", "body_size")
    list_filter = ("status", "signed", "webhook")
    search_fields = ("webhook__id", "delivery_id", "reason", "source_ip")
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
