"""REST API ``/api/routines``: CRUD and validation through DRF's APIClient on the real
URLconf. Run now and the run history need a running gateway: test_e2e_surfaces.py."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from gateway.protocol.routines import RoutineRunView, RoutineView
from routines.api import serializers as api_serializers
from routines.models import Routine
from tests.agents.conftest import create_agent
from tests.routines.conftest import STANDUP


@pytest.fixture
def main_agent():
    return create_agent("main", name="Main", is_default=True)


@pytest.mark.django_db
def test_crud_with_seed_fields(api, main_agent):
    seed = {"name": "news", "agentId": "main", "cron": "@daily", "prompt": "p", "enabled": True}
    created = api.post("/api/routines", seed, format="json")
    assert created.status_code == 201, created.data
    routine = created.data
    assert routine["cron"] == "0 0 * * *" or routine["cron"] == "@daily"
    assert routine["timezone"] == "UTC" and routine["target"] == "routine"
    assert PeriodicTask.objects.filter(name=f"routine:{routine['id']}", enabled=True).exists()
    listed = api.get("/api/routines/")
    assert listed.status_code == 200 and [r["id"] for r in listed.data["results"]] == [
        routine["id"]
    ]
    path = f"/api/routines/{routine['id']}"
    patched = api.patch(path, {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.data["enabled"] is False
    assert patched.data["nextRunAt"] is None and patched.data["nextRuns"] == []
    assert patched.data["prompt"] == "p"  # PATCH leaves other fields alone
    put = api.put(path, {"name": "n2", "agentId": "main", "every": "1h", "prompt": "q"})
    assert put.status_code == 200, put.data
    assert put.data["everySeconds"] == 3600 and put.data["enabled"] is True
    assert api.get(path).data["name"] == "n2"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404
    assert not PeriodicTask.objects.filter(name=f"routine:{routine['id']}").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (STANDUP | {"cron": "99 99 * * *"}, "cron"),
        (STANDUP | {"cron": "bad cron"}, "cron"),
        (STANDUP | {"cron": "* * * * * *"}, "cron"),
        (STANDUP | {"timezone": "Nowhere/City"}, "timezone"),
        (STANDUP | {"agentId": "ghost"}, "agentId"),
        (STANDUP | {"target": "session"}, "sessionKey"),
        (STANDUP | {"bogus": 1}, "bogus"),
        ({k: v for k, v in STANDUP.items() if k != "prompt"}, "prompt"),
        (STANDUP | {"at": "2026-12-24T18:00+01:00"}, "non_field_errors"),
    ],
)
def test_bad_input_is_400_by_field_and_saves_nothing(api, main_agent, body, field):
    res = api.post("/api/routines", body, format="json")
    assert res.status_code == 400, res.data
    assert field in res.data, res.data
    assert Routine.objects.count() == 0 and PeriodicTask.objects.count() == 0


@pytest.mark.django_db
def test_bad_patch_changes_nothing(api, main_agent):
    routine = api.post("/api/routines", STANDUP, format="json").data
    res = api.patch(f"/api/routines/{routine['id']}", {"cron": "61 * * * *"}, format="json")
    assert res.status_code == 400 and "cron" in res.data
    after = dict(api.get(f"/api/routines/{routine['id']}").data)
    after.pop("nextRuns"), routine.pop("nextRuns")
    assert after == routine


def test_output_serializers_declare_the_view():
    declared = set(api_serializers.RoutineOutput().fields)
    assert declared == {f.alias or n for n, f in RoutineView.model_fields.items()}
    declared = set(api_serializers.RoutineRunOutput().fields)
    assert declared == {f.alias or n for n, f in RoutineRunView.model_fields.items()}
