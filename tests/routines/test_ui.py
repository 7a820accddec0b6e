"""Control UI routines pages with Django's test client (the browser flow is in
test_ui_browser.py): access, the form's errors next to their fields with nothing saved,
edit, enable/disable, delete."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.models import Agent
from routines.models import Routine
from routines.services.routines import routine_create

pytestmark = pytest.mark.django_db

TOKEN = "ui-token"
FORM = {
    "name": "standup",
    "agent_id": "main",
    "prompt": "news summary",
    "schedule_kind": "cron",
    "cron": "0 9 * * 1-5",
    "every": "",
    "at": "",
    "timezone": "Europe/Berlin",
    "target_kind": "routine",
    "target_session_key": "",
    "description": "",
    "enabled": "on",
}


@pytest.fixture
def ui(client: Client, wingman_auth) -> Client:
    wingman_auth("token", token=TOKEN)
    Agent.objects.create(id="main", name="Main", model="wingman:echo", is_default=True)
    response = client.post("/login/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 302
    return client


def test_pages_need_a_login(client: Client, wingman_auth):
    wingman_auth("token", token=TOKEN)
    for path in ("/routines/", "/routines/+new/"):
        assert client.get(path).status_code == 302


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"cron": "99 99 * * *"}, "cron", "99"),
        ({"cron": "bad cron"}, "cron", "5 fields"),
        ({"schedule_kind": "every", "every": "soon"}, "every", "soon"),
        ({"timezone": "Mars/Base"}, "timezone", "Mars/Base"),
        ({"target_kind": "session"}, "target_session_key", "session key"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_bad_form_shows_the_error_at_its_field(ui: Client, change, field, needle):
    response = ui.post("/routines/+new/", FORM | change)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and any(needle in e for e in errors[field]), errors
    assert Routine.objects.count() == 0


def test_create_edit_toggle_delete(ui: Client):
    response = ui.post("/routines/+new/", FORM)
    assert response.status_code == 302
    routine = Routine.objects.get()
    assert response["Location"] == f"/routines/{routine.pk}/"
    page = ui.get(response["Location"]).content.decode()
    assert page.count("<li>") >= 5 and "every weekday at 9:00" in page
    assert f'href="/?session=agent%3Amain%3Aroutine%3A{routine.pk}"' in page  # open thread
    assert ui.post(f"/routines/{routine.pk}/", FORM | {"cron": "30 8 * * *"}).status_code == 302
    assert Routine.objects.get().cron == "30 8 * * *"
    assert ui.post(f"/routines/{routine.pk}/enabled/", {"enabled": "false"}).status_code == 302
    assert not Routine.objects.get().enabled
    listing = ui.get("/routines/").content.decode()
    assert "standup" in listing and "disabled" in listing
    assert ui.post(f"/routines/{routine.pk}/delete/").status_code == 302
    assert Routine.objects.count() == 0
    assert ui.get(f"/routines/{routine.pk}/").status_code == 404


def test_every_routine_kind_renders(ui: Client):
    routine_create(name="often", agent_id="main", prompt="p", schedule_kind="every", every="15m")
    routine_create(
        name="once", agent_id="main", prompt="p", schedule_kind="at", at="2099-01-01T09:00+00:00"
    )
    for routine in Routine.objects.all():
        assert ui.get(f"/routines/{routine.pk}/").status_code == 200
    assert ui.get("/routines/").status_code == 200
