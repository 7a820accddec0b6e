"""Admin smoke tests: every changelist, add form, search and action, and the links between
the admin and the Control UI."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Agent, Binding, Message, MessageRole, Run, RunStatus, Session
from agents.services import agents as agent_service
from agents.services import sessions as session_service

pytestmark = pytest.mark.django_db

MODELS = ["agent", "binding", "session", "run", "message"]


@pytest.fixture
def data():
    main = agent_service.agent_create(id="main", name="Main", model="wingman:echo")
    other = agent_service.agent_create(id="other", name="Other")
    agent_service.binding_create(agent=other, channel="webui", peer_kind="dm", peer_id="u1")
    session = session_service.session_create(agent=main, name="Findme chat")
    run = Run.objects.create(session=session, prompt="hello findme", status=RunStatus.OK)
    Message.objects.create(
        session=session, role=MessageRole.USER, content="hello findme", run=run, position=1
    )
    return {"main": main, "other": other, "session": session, "run": run}


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_search(admin_client, data, model):
    url = reverse(f"admin:agents_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    term = {"agent": "Main", "binding": "webui"}.get(model, "findme")
    found = admin_client.get(url, {"q": term})
    assert found.status_code == 200
    assert found.context["cl"].result_count >= 1
    assert admin_client.get(url, {"q": "no-such-thing-anywhere"}).context["cl"].result_count == 0


@pytest.mark.parametrize("model", MODELS)
def test_change_pages_open(admin_client, data, model):
    obj = {
        "agent": data["main"],
        "binding": Binding.objects.first(),
        "session": data["session"],
        "run": data["run"],
        "message": Message.objects.first(),
    }[model]
    url = reverse(f"admin:agents_{model}_change", args=[obj.pk])
    assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize(("model", "status"), [("agent", 200), ("binding", 200), ("session", 200)])
def test_add_forms_open(admin_client, model, status):
    assert admin_client.get(reverse(f"admin:agents_{model}_add")).status_code == status


@pytest.mark.parametrize("model", ["run", "message"])
def test_runs_and_messages_are_not_added_by_hand(admin_client, model):
    assert admin_client.get(reverse(f"admin:agents_{model}_add")).status_code == 403


def _agent_post(**overrides):
    form = {
        "id": "helper",
        "name": "Helper",
        "model": "openai:gpt-4o",
        "system_prompt": "",
        "tools": '["read_file"]',
        "workspace": "",
        "agent_dir": "",
        "enabled": "on",
        "bindings-TOTAL_FORMS": "0",
        "bindings-INITIAL_FORMS": "0",
        "bindings-MIN_NUM_FORMS": "0",
        "bindings-MAX_NUM_FORMS": "1000",
    }
    form.update(overrides)
    return form


def test_add_agent_through_the_form(admin_client, data):
    res = admin_client.post(reverse("admin:agents_agent_add"), _agent_post(is_default="on"))
    assert res.status_code == 302, res.context and res.context["adminform"].form.errors
    helper = Agent.objects.get(pk="helper")
    assert helper.tools == ["read_file"] and helper.is_default
    assert Agent.objects.filter(is_default=True).count() == 1


@pytest.mark.parametrize(
    ("field", "value"), [("model", "gpt-4o"), ("tools", '["rm_rf"]'), ("id", "Bad Id")]
)
def test_invalid_agent_shows_the_field_error_and_saves_nothing(admin_client, data, field, value):
    res = admin_client.post(reverse("admin:agents_agent_add"), _agent_post(**{field: value}))
    assert res.status_code == 200
    assert field in res.context["adminform"].form.errors
    assert not Agent.objects.filter(name="Helper").exists()


def test_make_default_action(admin_client, data):
    url = reverse("admin:agents_agent_changelist")
    res = admin_client.post(url, {"action": "make_default", "_selected_action": ["other"]})
    assert res.status_code == 302
    assert Agent.objects.get(is_default=True).pk == "other"
    admin_client.post(url, {"action": "make_default", "_selected_action": ["main", "other"]})
    assert Agent.objects.get(is_default=True).pk == "other"


def test_rename_sessions_action_asks_then_renames(admin_client, data):
    url = reverse("admin:agents_session_changelist")
    pk = str(data["session"].pk)
    page = admin_client.post(url, {"action": "rename_sessions", "_selected_action": [pk]})
    assert page.status_code == 200 and b"Rename 1 session" in page.content
    empty = admin_client.post(
        url, {"action": "rename_sessions", "_selected_action": [pk], "apply": "1", "name": ""}
    )
    assert empty.status_code == 200 and Session.objects.get(pk=pk).name == "Findme chat"
    done = admin_client.post(
        url,
        {"action": "rename_sessions", "_selected_action": [pk], "apply": "1", "name": "Renamed"},
    )
    assert done.status_code == 302
    assert Session.objects.get(pk=pk).name == "Renamed"


def test_cancel_action_settles_an_orphaned_run(admin_client, data):
    """A queued run whose process is gone is ended by the run service itself, as lost."""
    orphan = Run.objects.create(
        session=data["session"], prompt="x", status=RunStatus.QUEUED, owner="gone"
    )
    url = reverse("admin:agents_run_changelist")
    res = admin_client.post(
        url, {"action": "cancel_runs", "_selected_action": [orphan.pk, data["run"].pk]}
    )
    assert res.status_code == 302
    orphan.refresh_from_db()
    data["run"].refresh_from_db()
    assert (orphan.status, orphan.error_code) == (RunStatus.ERROR, "EXECUTOR_LOST")
    assert orphan.ended_at is not None
    assert data["run"].status == RunStatus.OK


def test_admin_and_control_ui_link_both_ways(admin_client, data):
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("ui:chat")}"' in index
    change = admin_client.get(reverse("admin:agents_session_change", args=[data["session"].pk]))
    assert "?session=agent%3Amain%3Asession%3A" in change.content.decode()


def test_admin_delete_refuses_the_default_agent(admin_client, data):
    url = reverse("admin:agents_agent_delete", args=["main"])
    page = admin_client.get(url, follow=True)
    assert "Not deleted: agent &#x27;main&#x27; is the default agent" in page.content.decode()
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert Agent.objects.filter(pk="main", is_default=True).exists()


def test_admin_delete_lists_the_sessions_and_deletes_them_on_confirmation(admin_client, data):
    other = data["other"]
    session = session_service.session_create(agent=other, name="Other chat")
    url = reverse("admin:agents_agent_delete", args=["other"])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert "Other chat" in confirm.content.decode()  # Django lists what goes with it
    assert Session.objects.filter(pk=session.pk).exists()
    admin_client.post(url, {"post": "yes"})
    assert not Agent.objects.filter(pk="other").exists()
    assert not Session.objects.filter(pk=session.pk).exists()


def test_admin_delete_action_goes_through_the_service_rules(admin_client, data):
    url = reverse("admin:agents_agent_changelist")
    every = {"action": "delete_selected", "_selected_action": ["main", "other"]}
    refused = admin_client.post(url, every, follow=True)
    assert "Not deleted: the only agent cannot be deleted" in refused.content.decode()
    agent_service.agent_create(id="third")
    both = {"action": "delete_selected", "_selected_action": ["main", "other"]}
    refused = admin_client.post(url, both, follow=True)
    assert "Not deleted: agent &#x27;main&#x27; is the default agent" in refused.content.decode()
    assert Agent.objects.count() == 3
    assert admin_client.post(url, {**both, "post": "yes"}).status_code == 302
    assert Agent.objects.count() == 3  # the confirmation's post is checked again
    one = {"action": "delete_selected", "_selected_action": ["other"]}
    confirm = admin_client.post(url, one)
    assert confirm.status_code == 200 and b"Are you sure" in confirm.content
    admin_client.post(url, {**one, "post": "yes"})
    assert set(Agent.objects.values_list("id", flat=True)) == {"main", "third"}
