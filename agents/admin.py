"""The operator's view of agents, bindings, sessions, messages and runs.

Writes with rules go through the services (validation of an agent's model and tools,
making an agent the default, renaming a session, cancelling a run). Every session links to
its conversation in the Control UI; the Control UI links back here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from agents import selectors
from agents.models import Agent, Binding, Message, Run, RunStatus, Session
from agents.services import agents as agent_service
from agents.services import runs as run_service
from agents.services import sessions as session_service
from gateway.protocol.errors import GatewayError

admin.site.site_header = "Wingman Gateway"
admin.site.site_title = "Wingman Gateway admin"
admin.site.index_title = "Manage the gateway"
#: "View site" in the admin header opens the Control UI.
admin.site.site_url = "/"


def control_ui_url(session_key: str) -> str:
    """The Control UI's chat page on ``session_key``."""
    return f"{reverse('ui:chat')}?{urlencode({'session': session_key})}"


class AgentForm(forms.ModelForm):
    """The admin's agent form, checked by the same rules as the API and the Control UI."""

    class Meta:
        model = Agent
        fields = ("id", *agent_service.AGENT_FIELDS, "is_default")

    def clean(self):
        cleaned = super().clean()
        # The default flag moves through the service (AgentAdmin.save_model), so the "one
        # default agent" constraint is not checked against the old default here.
        self.make_default = bool(cleaned.get("is_default"))
        cleaned["is_default"] = self.make_default and bool(
            self.instance.pk and Agent.objects.filter(pk=self.instance.pk, is_default=True).exists()
        )
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()
        try:
            agent_service.agent_check(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


class BindingInline(admin.TabularInline):
    model = Binding
    extra = 0
    fields = agent_service.BINDING_FIELDS


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ("id", "name", "model", "is_default", "enabled", "session_count", "updated_at")
    list_filter = ("enabled", "is_default")
    search_fields = ("id", "name", "model", "system_prompt")
    inlines = [BindingInline]
    # delete_selected replaces Django's action of that name (its confirmation page posts
    # that name back) so that the service's rules are checked first.
    actions = ["make_default", "delete_selected"]

    def get_queryset(self, request):
        return selectors.agents_with_counts()

    # Deleting: Django's confirmation page lists the sessions, messages and runs that go
    # with the agent, so confirming there is the explicit force; the service's other rules
    # (never the only or the default agent) are checked before that page is shown.
    def delete_view(self, request, object_id, extra_context=None):
        agent = self.get_object(request, unquote(object_id))
        if agent is not None and not self._deletable(request, [agent]):
            return redirect(reverse("admin:agents_agent_change", args=[agent.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj: Agent) -> None:
        agent_service.agent_delete(agent=obj, force=True)

    def delete_queryset(self, request, queryset) -> None:
        agent_service.agents_delete(agents=list(queryset), force=True)

    @admin.action(
        permissions=["delete"], description="Delete the selected agents (with their sessions)"
    )
    def delete_selected(self, request, queryset):
        """Django's delete confirmation, once the service's rules allow it."""
        if not self._deletable(request, list(queryset)):
            return None
        return admin_actions.delete_selected(self, request, queryset)

    def _deletable(self, request, agents: list[Agent]) -> bool:
        try:
            agent_service.agents_delete_check(agents=agents, force=True)
        except (ValidationError, GatewayError) as refused:
            text = refused.message if isinstance(refused, GatewayError) else refused.messages[0]
            self.message_user(request, f"Not deleted: {text}.", messages.ERROR)
            return False
        return True

    def save_model(self, request, obj: Agent, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.make_default:
            agent_service.agent_make_default(agent=obj)

    @admin.display(description="sessions", ordering="session_count")
    def session_count(self, obj: Agent) -> int:
        return obj.session_count

    @admin.action(description="Make the selected agent the default")
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one agent.", messages.ERROR)
            return
        agent = agent_service.agent_make_default(agent=queryset.get())
        self.message_user(request, f"{agent.id} is now the default agent.")


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", *agent_service.BINDING_FIELDS)
    list_filter = ("channel", "peer_kind", "agent")
    search_fields = ("channel", "account_id", "guild_id", "team_id", "peer_id", "agent__id")


class ReadOnlyInline(admin.TabularInline):
    """Rows written only by the run service: shown, never added, changed or deleted here."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ("position", "role", "content", "run", "created_at")
    ordering = ("position",)


class RunInline(ReadOnlyInline):
    model = Run
    fields = ("id", "source", "status", "created_at", "ended_at")
    show_change_link = True


class RenameForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="the new name of every selected session")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "name",
        "agent",
        "channel",
        "message_count",
        "last_preview",
        "updated_at",
        "open_in_control_ui",
    )
    list_filter = ("agent", "channel")
    search_fields = ("key", "name", "last_preview")
    readonly_fields = (
        "key",
        "message_count",
        "last_preview",
        "created_at",
        "updated_at",
        "open_in_control_ui",
    )
    date_hierarchy = "updated_at"
    inlines = [MessageInline, RunInline]
    actions = ["rename_sessions"]

    @admin.display(description="Control UI")
    def open_in_control_ui(self, obj: Session) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">open chat</a>', control_ui_url(obj.key))

    @admin.action(description="Rename the selected sessions")
    def rename_sessions(self, request, queryset):
        """An intermediate page asks for the name, then the session service renames."""
        form = RenameForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            for session in queryset:
                session_service.session_rename(key=session.key, name=form.cleaned_data["name"])
            self.message_user(request, f"{queryset.count()} session(s) renamed.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Rename sessions",
            "form": form,
            "sessions": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/agents/session/rename.html", context)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "source", "status", "created_at", "started_at", "ended_at")
    list_filter = ("status", "source", "session__agent")
    search_fields = ("id", "prompt", "session__key", "idempotency_key")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Run._meta.fields]
    actions = ["cancel_runs"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        """Cancel open runs wherever they execute; a run whose process is gone is ended
        as lost (EXECUTOR_LOST) instead."""
        ids = list(queryset.filter(status__in=OPEN).values_list("id", flat=True))
        cancelled = sum(async_to_sync(run_service.run_cancel)(run_id) for run_id in ids)
        lost = Run.objects.filter(pk__in=ids, error_code=run_service.EXECUTOR_LOST).count()
        note = f"; {lost} ended as lost (their process was gone)" if lost else ""
        self.message_user(request, f"{cancelled} run(s) cancelled{note}.")


OPEN = [RunStatus.QUEUED, RunStatus.RUNNING]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("session", "position", "role", "short_content", "created_at")
    list_filter = ("role",)
    search_fields = ("content", "session__key")
    readonly_fields = ("session", "role", "content", "run", "position", "created_at")

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        return obj.content[:80]

    def has_add_permission(self, request) -> bool:
        return False
