"""The routine form of the Control UI. It only parses and shows errors: writes go through
``routines/services/routines.py``, whose field-keyed ValidationErrors (field names are the
service's, as here) land next to the fields."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from django import forms
from django.conf import settings

from agents.models import Agent
from gateway.ui.forms import ServiceForm
from routines.models import Routine, ScheduleKind, TargetKind

#: (label, CRON) offered next to the CRON field (ui/routines.js copies one into it).
CRON_PRESETS = (
    ("every weekday at 9:00", "0 9 * * 1-5"),
    ("every day at 9:00", "0 9 * * *"),
    ("every Monday at 8:00", "0 8 * * 1"),
    ("every hour", "0 * * * *"),
    ("every 15 minutes", "*/15 * * * *"),
    ("the 1st of every month at 9:00", "0 9 1 * *"),
    ("every day at midnight", "@daily"),
)


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


class RoutineForm(ServiceForm):
    """Create or edit a routine: one of the three schedule kinds with its value."""

    name = forms.CharField(max_length=200)
    agent_id = forms.ChoiceField(label="Agent")
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False)
    schedule_kind = forms.ChoiceField(
        label="Schedule", choices=ScheduleKind.choices, initial=ScheduleKind.CRON
    )
    cron = forms.CharField(
        label="CRON",
        required=False,
        max_length=200,
        help_text="minute hour day-of-month month weekday, e.g. 0 9 * * 1-5; or @daily",
    )
    every = forms.CharField(
        label="Every", required=False, max_length=50, help_text="e.g. 15m, 2h, 1d"
    )
    at = forms.CharField(
        label="At", required=False, max_length=64, help_text="e.g. 2026-12-24T18:00+01:00"
    )
    delete_after_run = forms.BooleanField(label="Delete after it ran", required=False)
    timezone = forms.ChoiceField(label="Time zone")
    target_kind = forms.ChoiceField(
        label="Runs go to", choices=TargetKind.choices, initial=TargetKind.ROUTINE
    )
    target_session_key = forms.CharField(
        label="Session key",
        required=False,
        max_length=500,
        help_text="for “existing session”: e.g. agent:main:main",
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, routine: Routine | None = None, **kwargs) -> None:
        if routine is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": routine.name,
                "agent_id": routine.agent_id,
                "prompt": routine.prompt,
                "schedule_kind": routine.schedule_kind,
                "cron": routine.cron,
                "every": routine.every_seconds and f"{routine.every_seconds}s",
                "at": routine.at.isoformat() if routine.at else "",
                "delete_after_run": routine.delete_after_run,
                "timezone": routine.timezone,
                "target_kind": routine.target_kind,
                "target_session_key": routine.target_session_key,
                "description": routine.description,
                "enabled": routine.enabled,
            }
        super().__init__(*args, **kwargs)
        self.fields["agent_id"].choices = list(Agent.objects.order_by("id").values_list("id", "id"))
        self.fields["timezone"].choices = timezone_choices()
        self.fields["timezone"].initial = settings.WINGMAN_TIMEZONE

    def service_fields(self) -> dict:
        """The cleaned data as keyword arguments of routine_create / routine_update: only
        the chosen kind's schedule value."""
        data = dict(self.cleaned_data)
        kind = data["schedule_kind"]
        for other in ("cron", "every", "at"):
            if other != kind:
                data.pop(other)
        return data
