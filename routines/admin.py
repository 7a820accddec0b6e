"""The operator's view of routines: their schedule, next runs, last outcome and run history,
with actions that go through the routine services (run now, enable, disable, delete).

Creating and editing a routine happens in the Control UI (or the API, the CLI), whose form
checks the schedule: the admin links there, so django-celery-beat's rows are only ever
written by ``routines/services/beat.py``.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from agents.admin import control_ui_url
from routines import wire
from routines.models import Routine, RoutineRun
from routines.services import routines as service


class RoutineRunInline(admin.TabularInline):
    """The routine's runs and skipped times, newest first (read-only)."""

    model = RoutineRun
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created_at", "-id")
    fields = ("created_at", "trigger", "scheduled_at", "status", "run", "duration_ms", "reason")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("run")


@admin.register(Routine)
class RoutineAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "agent",
        "schedule",
        "timezone",
        "enabled",
        "next_run_at",
        "last_status",
        "consecutive_errors",
    )
    list_filter = ("enabled", "schedule_kind", "last_status", "agent")
    search_fields = ("id", "name", "prompt", "description")
    inlines = [RoutineRunInline]
    actions = ["run_now", "enable", "disable", "delete_selected"]
    fields = (
        "id",
        "name",
        "edit_link",
        "agent",
        "schedule",
        "timezone",
        "next_runs",
        "prompt",
        "description",
        "enabled",
        "disabled_reason",
        "target",
        "last_run_at",
        "last_status",
        "last_error",
        "last_run_id",
        "last_duration_ms",
        "consecutive_errors",
        "revision",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # created in the Control UI, the API or the CLI (they check schedules)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only here; the actions and the Control UI change routines

    @admin.display(description="schedule")
    def schedule(self, obj: Routine) -> str:
        return wire.routine_view(obj)["schedule"]

    @admin.display(description="next runs (UTC)")
    def next_runs(self, obj: Routine):
        times = wire.next_runs(obj)
        if not times:
            return "none" + (" (disabled)" if not obj.enabled else "")
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "", "<li>{}</li>", ((t.strftime("%a %Y-%m-%d %H:%M"),) for t in times)
            ),
        )

    @admin.display(description="runs go to")
    def target(self, obj: Routine):
        key = service.target_key(obj)
        return format_html('<a href="{}">{}</a> ({})', control_ui_url(key), key, obj.target_kind)

    @admin.display(description="edit")
    def edit_link(self, obj: Routine):
        url = reverse("ui:routine-edit", args=[obj.pk])
        return format_html('<a href="{}">Edit in the Control UI</a>', url)

    # actions (through the services) -------------------------------------------------------
    @admin.action(description="Run the selected routines now")
    def run_now(self, request, queryset) -> None:
        for routine in queryset:
            outcome = async_to_sync(wire.run_now)(routine.pk)
            if outcome["runId"]:
                self.message_user(request, f"{routine.name}: run {outcome['runId']} started.")
            else:
                text = f"{routine.name}: not run ({outcome['reason']})."
                self.message_user(request, text, messages.WARNING)

    @admin.action(description="Enable the selected routines")
    def enable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected routines")
    def disable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        for routine_id in ids:
            service.routine_set_enabled(routine_id=routine_id, enabled=enabled)
        state = "enabled" if enabled else "disabled"
        self.message_user(request, f"{len(ids)} routine(s) {state}.")

    def delete_model(self, request, obj: Routine) -> None:
        service.routine_delete(routine_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for routine_id in list(queryset.values_list("pk", flat=True)):
            service.routine_delete(routine_id=routine_id)
