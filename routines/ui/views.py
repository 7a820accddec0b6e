"""Control UI pages for routines: the list, a form to create or edit one (CRON presets, a
time zone picker), its next runs, last outcome and run history, and actions (run now,
enable/disable, delete, open its thread in the chat). Writes go through the routine
services; their field-keyed errors land next to the fields."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from agents.models import Session
from gateway.protocol.errors import GatewayError
from gateway.ui.access import ui_login_required
from routines import wire
from routines.models import Routine
from routines.services import routines as service
from routines.ui.forms import CRON_PRESETS, RoutineForm

HISTORY = 20


def when(ms: int | None, zone: str) -> str:
    """A time (ms since the epoch) as people read it, in the routine's zone."""
    if ms is None:
        return "—"
    moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(zone))
    return moment.strftime("%a %Y-%m-%d %H:%M %Z")


def _shown(view: dict) -> dict:
    """The view plus its times as text (templates cannot format ms)."""
    zone = view["timezone"]
    return view | {
        "nextRunText": when(view["nextRunAt"], zone),
        "nextRunsText": [when(ms, zone) for ms in view["nextRuns"]],
        "lastRunText": when(view["lastRunAt"], zone),
    }


@ui_login_required
def routine_list(request: HttpRequest) -> HttpResponse:
    routines = [_shown(view) for view in wire.routine_views()]
    return render(request, "ui/routines.html", {"nav": "routines", "routines": routines})


@ui_login_required
@require_http_methods(["GET", "POST"])
def routine_create(request: HttpRequest) -> HttpResponse:
    form = RoutineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            routine = service.routine_create(**form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Routine {routine.name!r} created.")
            return redirect("ui:routine-edit", routine_id=routine.pk)
    return _page(request, None, form)


@ui_login_required
@require_http_methods(["GET", "POST"])
def routine_edit(request: HttpRequest, routine_id: str) -> HttpResponse:
    routine = get_object_or_404(Routine, pk=routine_id)
    form = RoutineForm(request.POST or None, routine=routine)
    if request.method == "POST" and form.is_valid():
        try:
            service.routine_update(routine_id=routine.pk, **form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Routine {routine.name!r} saved.")
            return redirect("ui:routine-edit", routine_id=routine.pk)
    return _page(request, routine, form)


def _page(request: HttpRequest, routine: Routine | None, form: RoutineForm) -> HttpResponse:
    context = {"nav": "routines", "form": form, "presets": CRON_PRESETS, "routine": None}
    if routine is not None:
        runs = [wire.run_view(r) for r in wire.run_queryset(routine.pk)[:HISTORY]]
        routine = get_object_or_404(Routine, pk=routine.pk)  # after its runs: a settled
        # run then shows settled in both places
        view = _shown(wire.routine_view(routine))
        for run in runs:
            run["whenText"] = when(run["scheduledAt"] or run["startedAt"], view["timezone"])
        context |= {
            "routine": view,
            "runs": runs,
            "thread_exists": Session.objects.filter(key=view["sessionKey"]).exists(),
        }
    return render(request, "ui/routine_form.html", context, status=400 if form.errors else 200)


@ui_login_required
@require_POST
def routine_run(request: HttpRequest, routine_id: str) -> HttpResponse:
    """Run now; the answer streams into its thread (open it in the chat to watch)."""
    routine = get_object_or_404(Routine, pk=routine_id)
    outcome = async_to_sync(wire.run_now)(routine.pk)
    if outcome["runId"]:
        messages.success(request, f"Run {outcome['runId']} started in {outcome['sessionKey']}.")
    else:
        messages.error(request, f"Not run: {outcome['reason']}.")
    return redirect("ui:routine-edit", routine_id=routine_id)


@ui_login_required
@require_POST
def routine_enabled(request: HttpRequest, routine_id: str) -> HttpResponse:
    routine = get_object_or_404(Routine, pk=routine_id)
    enabled = request.POST.get("enabled") == "true"
    service.routine_set_enabled(routine_id=routine.pk, enabled=enabled)
    messages.success(request, f"Routine {routine.name!r} {'enabled' if enabled else 'disabled'}.")
    return redirect("ui:routine-edit", routine_id=routine_id)


@ui_login_required
@require_POST
def routine_delete(request: HttpRequest, routine_id: str) -> HttpResponse:
    routine = get_object_or_404(Routine, pk=routine_id)
    try:
        service.routine_delete(routine_id=routine.pk)
    except GatewayError as refused:
        messages.error(request, f"Not deleted: {refused.message}.")
        return redirect("ui:routine-edit", routine_id=routine_id)
    messages.success(request, f"Routine {routine.name!r} deleted (its thread stays).")
    return redirect("ui:routines")
