"""Admin smoke tests for routines: the changelist and search, the read-only page with next
runs and run history, and the actions, which go through the services (beat rows follow).
The run-now action needs a running gateway: test_e2e_surfaces.py."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from agents.models import Agent
from routines.models import Routine, RoutineRun, RoutineStatus, Trigger
from routines.services.routines import routine_create

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:routines_routine_changelist"


@pytest.fixture
def routine() -> Routine:
    Agent.objects.create(id="main", name="Main", model="wingman:echo", is_default=True)
    routine = routine_create(
        name="findme news", agent_id="main", prompt="p", cron="0 9 * * 1-5", timezone="UTC"
    )
    RoutineRun.objects.create(
        routine=routine, trigger=Trigger.MANUAL, status=RoutineStatus.SKIPPED, reason="overlap"
    )
    return routine


def test_changelist_search_and_page(admin_client, routine):
    url = reverse(CHANGELIST)
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "findme"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"q": "nothing-like-it"}).context["cl"].result_count == 0
    page = admin_client.get(reverse("admin:routines_routine_change", args=[routine.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("<li>") >= 5 and "overlap" in text  # next runs, run history
    assert reverse("ui:routine-edit", args=[routine.pk]) in text
    assert admin_client.get(reverse("admin:routines_routine_add")).status_code == 403


def _act(admin_client, action: str, routine: Routine):
    data = {"action": action, "_selected_action": [routine.pk]}
    return admin_client.post(reverse(CHANGELIST), data, follow=True)


def test_enable_disable_delete_actions_keep_beat_in_step(admin_client, routine):
    task = f"routine:{routine.pk}"
    assert _act(admin_client, "disable", routine).status_code == 200
    assert not Routine.objects.get().enabled
    assert not PeriodicTask.objects.get(name=task).enabled
    _act(admin_client, "enable", routine)
    assert Routine.objects.get().enabled and PeriodicTask.objects.get(name=task).enabled
    confirm = {"action": "delete_selected", "_selected_action": [routine.pk], "post": "yes"}
    admin_client.post(reverse(CHANGELIST), confirm, follow=True)
    assert not Routine.objects.exists() and not PeriodicTask.objects.filter(name=task).exists()
