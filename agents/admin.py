"""The operator's view of agents, bindings, sessions, messages and runs."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db.models import Count

from agents.models import Agent, Binding, Message, Run, RunStatus, Session
from agents.services import agents as agent_service
from agents.services import runs as run_service


class BindingInline(admin.TabularInline):
    model = Binding
    extra = 0
    fields = ("channel", "account_id", "guild_id", "team_id", "peer_kind", "peer_id", "order")


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "model", "is_default", "enabled", "session_count", "updated_at")
    list_filter = ("enabled", "is_default")
    search_fields = ("id", "name", "model", "system_prompt")
    inlines = [BindingInline]
    actions = ["make_default"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_sessions=Count("sessions"))

    @admin.display(description="sessions", ordering="_sessions")
    def session_count(self, obj: Agent) -> int:
        return obj._sessions

    @admin.action(description="Make the selected agent the default")
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one agent.", messages.ERROR)
            return
        agent = agent_service.agent_make_default(agent=queryset.get())
        self.message_user(request, f"{agent.id} is now the default agent.")


@admin.register(Binding)
class BindingAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "agent",
        "channel",
        "account_id",
        "guild_id",
        "team_id",
        "peer_kind",
        "peer_id",
        "order",
    )
    list_filter = ("channel", "peer_kind", "agent")
    search_fields = ("channel", "account_id", "guild_id", "team_id", "peer_id", "agent__id")


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ("position", "role", "content", "run", "created_at")
    readonly_fields = fields
    ordering = ("position",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RunInline(admin.TabularInline):
    model = Run
    extra = 0
    can_delete = False
    fields = ("id", "source", "status", "created_at", "ended_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


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
    )
    list_filter = ("agent", "channel")
    search_fields = ("key", "name", "last_preview")
    readonly_fields = ("key", "message_count", "last_preview", "created_at", "updated_at")
    inlines = [MessageInline, RunInline]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "source", "status", "created_at", "started_at", "ended_at")
    list_filter = ("status", "source")
    search_fields = ("id", "prompt", "session__key", "idempotency_key")
    readonly_fields = [f.name for f in Run._meta.fields]
    actions = ["cancel_runs"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        open_runs = queryset.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        cancelled = sum(async_to_sync(run_service.run_cancel)(run.id) for run in open_runs)
        self.message_user(request, f"{cancelled} run(s) cancelled.")


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
