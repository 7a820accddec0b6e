"""The operator's view of API tokens: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from django.contrib import admin, messages

from gateway.models import ApiToken
from gateway.security.tokens import api_token_create, api_token_revoke


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", "active"), ("yes", "revoked")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created through the service; afterwards they can only be revoked."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "active")
    list_filter = (RevokedFilter,)
    search_fields = ("name", "prefix", "user__username", "user__email")
    list_select_related = ("user",)
    actions = ["revoke"]
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:  # the add form asks for what the service needs, nothing else
            return ("user", "name")
        return self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":  # the service refuses inactive users
            kwargs["queryset"] = db_field.remote_field.model.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    @admin.display(boolean=True, description="active")
    def active(self, obj: ApiToken) -> bool:
        return not obj.revoked

    def save_model(self, request, obj, form, change):
        if change:  # every field is read-only after creation
            return
        token, secret = api_token_create(user=obj.user, name=obj.name)
        obj.pk = token.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            f"API token {token.name!r} for {token.user}: {secret} — copy it now, "
            "it is not stored and will not be shown again.",
        )

    @admin.action(description="Revoke selected API tokens")
    def revoke(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            api_token_revoke(token=token)
        self.message_user(request, f"{len(tokens)} API token(s) revoked.", messages.SUCCESS)
