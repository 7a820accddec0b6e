"""REST API for agents, bindings, sessions, messages and runs (reads and validation).

Synchronous endpoints through DRF's APIClient on the real URLconf and middleware. Starting,
streaming and cancelling runs needs the server's event loop: tests/agents/test_api_e2e.py.
"""

from __future__ import annotations

import pytest

from agents import selectors
from agents.api import serializers as api_serializers
from agents.models import Agent, Binding, Message, MessageRole, Run, RunSource, RunStatus, Session
from agents.services import sessions as session_service
from gateway.protocol.agent import RunParams
from tests.agents.conftest import create_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def main_agent() -> Agent:
    return create_agent("main", name="Main", is_default=True)


def _session(agent: Agent, key: str, **fields) -> Session:
    return Session.objects.create(key=key, agent=agent, **fields)


# agents ----------------------------------------------------------------------------------
def test_agent_crud_with_and_without_trailing_slash(api, main_agent):
    created = api.post(
        "/api/agents",
        {"id": "coder", "name": "Coder", "model": "wingman:slow", "tools": ["read_file"]},
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["id"] == "coder" and created.data["tools"] == ["read_file"]
    assert created.data["default"] is False and created.data["bindings"] == []
    assert isinstance(created.data["createdAt"], int)

    listed = api.get("/api/agents/")
    assert listed.status_code == 200
    assert [a["id"] for a in listed.data["results"]] == ["main", "coder"]
    assert listed.data["count"] == 2

    patched = api.patch(
        "/api/agents/coder", {"systemPrompt": "Be brief.", "default": True}, format="json"
    )
    assert patched.status_code == 200, patched.data
    assert patched.data["systemPrompt"] == "Be brief." and patched.data["default"] is True
    assert patched.data["model"] == "wingman:slow"  # PATCH leaves other fields alone
    assert not Agent.objects.get(pk="main").is_default

    # PUT replaces: fields left out get their defaults
    put = api.put("/api/agents/coder/", {"name": "C2", "default": True}, format="json")
    assert put.status_code == 200, put.data
    assert put.data["name"] == "C2" and put.data["model"] == "" and put.data["tools"] == []

    assert api.get("/api/agents/coder").data["name"] == "C2"
    assert api.delete("/api/agents/coder").status_code == 409  # the default agent stays
    assert api.patch("/api/agents/main", {"default": True}, format="json").status_code == 200
    assert api.delete("/api/agents/coder").status_code == 204
    assert not Agent.objects.filter(pk="coder").exists()
    assert Agent.objects.get(pk="main").is_default
    assert api.get("/api/agents/coder").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "Bad Id"}, "id"),
        ({"id": "main"}, "id"),  # exists
        ({"id": "x", "model": "nocolon"}, "model"),
        ({"id": "x", "tools": ["rm_rf"]}, "tools"),
        ({"id": "x", "tools": "read_file"}, "tools"),
        ({"id": "x", "systemPromt": "typo"}, "systemPromt"),
        ({"id": "x", "agentDir": "a" * 1001}, "agentDir"),
        ({"name": "no id"}, "id"),
        ({"id": "x", "enabled": "maybe"}, "enabled"),
    ],
)
def test_bad_agent_is_a_400_naming_the_field_and_changes_nothing(api, main_agent, body, field):
    before = list(Agent.objects.values_list("id", "name", "model", "is_default"))
    response = api.post("/api/agents", body, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data
    assert list(Agent.objects.values_list("id", "name", "model", "is_default")) == before


def test_bad_agent_update_changes_nothing(api, main_agent):
    response = api.patch("/api/agents/main", {"name": "New", "model": "bad"}, format="json")
    assert response.status_code == 400 and "model" in response.data
    main_agent.refresh_from_db()
    assert main_agent.name == "Main" and main_agent.model == "wingman:echo"


def test_the_only_agent_cannot_be_deleted(api, main_agent):
    response = api.delete("/api/agents/main")
    assert response.status_code == 400 and "id" in response.data
    assert Agent.objects.filter(pk="main").exists()


def test_deleting_the_default_agent_is_a_409_and_changes_nothing(api, main_agent):
    create_agent("support")
    response = api.delete("/api/agents/main?force=true")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "agent 'main' is the default agent; make another agent the default first",
        "code": "CONFLICT",
    }
    assert list(Agent.objects.filter(is_default=True).values_list("id", flat=True)) == ["main"]


def test_deleting_an_agent_with_sessions_needs_force(api, main_agent):
    support = create_agent("support")
    _session(support, "agent:support:main")
    _session(support, "agent:support:other")
    refused = api.delete("/api/agents/support")
    assert refused.status_code == 409
    body = refused.json()
    assert (body["code"], body["sessions"]) == ("CONFLICT", 2)
    assert "has 2 session(s)" in body["detail"]
    assert "DELETE /api/agents/support?force=true" in body["detail"]
    assert Agent.objects.filter(pk="support").exists() and Session.objects.count() == 2
    assert api.delete("/api/agents/support?force=maybe").status_code == 400
    assert api.delete("/api/agents/support?force=false").status_code == 409
    assert api.delete("/api/agents/support?force=true").status_code == 204
    assert not Agent.objects.filter(pk="support").exists() and Session.objects.count() == 0


def test_agents_are_paginated(api, main_agent):
    for i in range(4):
        create_agent(f"a{i}")
    page = api.get("/api/agents", {"limit": 2, "offset": 1})
    assert page.status_code == 200
    assert page.data["count"] == 5
    assert [a["id"] for a in page.data["results"]] == ["a0", "a1"]
    assert "offset=3" in page.data["next"] and page.data["previous"]


# bindings --------------------------------------------------------------------------------
def test_binding_crud_filter_and_agent_representation(api, main_agent):
    create_agent("support")
    made = api.post(
        "/api/bindings",
        {"agentId": "support", "channel": "slack", "peerKind": "dm", "peerId": "u1", "order": 2},
        format="json",
    )
    assert made.status_code == 201, made.data
    binding_id = made.data["id"]
    assert made.data["agentId"] == "support" and made.data["peerKind"] == "dm"
    api.post("/api/bindings", {"agentId": "main", "channel": "webui"}, format="json")

    only_support = api.get("/api/bindings", {"agent": "support"})
    assert [b["id"] for b in only_support.data["results"]] == [binding_id]
    assert [
        b["channel"] for b in api.get("/api/bindings", {"channel": "webui"}).data["results"]
    ] == ["webui"]
    agent = api.get("/api/agents/support").data
    assert [b["id"] for b in agent["bindings"]] == [binding_id]

    moved = api.patch(f"/api/bindings/{binding_id}", {"agentId": "main"}, format="json")
    assert moved.status_code == 200 and moved.data["agentId"] == "main"
    assert moved.data["peerId"] == "u1"
    replaced = api.put(
        f"/api/bindings/{binding_id}", {"agentId": "main", "channel": "x"}, format="json"
    )
    assert replaced.status_code == 200 and replaced.data["peerKind"] == ""
    assert api.delete(f"/api/bindings/{binding_id}").status_code == 204
    assert not Binding.objects.filter(pk=binding_id).exists()
    assert api.get(f"/api/bindings/{binding_id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agentId": "nobody", "channel": "slack"}, "agentId"),
        ({"agentId": "main"}, "channel"),
        ({"agentId": "main", "channel": "slack", "peerKind": "dm"}, "peerId"),
        ({"agentId": "main", "channel": "slack", "peerKind": "robot", "peerId": "1"}, "peerKind"),
        ({"agentId": "main", "channel": "slack", "order": -1}, "order"),
        ({"agentId": "main", "channel": "c" * 101}, "channel"),
    ],
)
def test_bad_binding_is_a_400_and_changes_nothing(api, main_agent, body, field):
    response = api.post("/api/bindings", body, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data
    assert not Binding.objects.exists()


# sessions and messages -------------------------------------------------------------------
def test_session_create_get_rename_folder_delete_with_colons_in_the_key(api, main_agent, settings):
    created = api.post("/api/sessions", {"agentId": "main", "name": "Release notes"}, format="json")
    assert created.status_code == 201, created.data
    key = created.data["sessionKey"]
    assert key.startswith("agent:main:session:") and created.data["name"] == "Release notes"

    assert api.get(f"/api/sessions/{key}").data["sessionKey"] == key
    assert api.get(f"/api/sessions/{key}/").status_code == 200

    renamed = api.patch(f"/api/sessions/{key}", {"name": "Notes"}, format="json")
    assert renamed.status_code == 200 and renamed.data["name"] == "Notes"

    root = settings.WINGMAN.fs_roots[0]
    folder = root / "proj"
    folder.mkdir(parents=True, exist_ok=True)
    moved = api.patch(f"/api/sessions/{key}", {"workingFolder": str(folder)}, format="json")
    assert moved.status_code == 200, moved.data
    assert moved.data["workingFolder"] == str(folder.resolve())
    cleared = api.patch(f"/api/sessions/{key}", {"workingFolder": ""}, format="json")
    assert cleared.data["workingFolder"] is None

    assert api.delete(f"/api/sessions/{key}").status_code == 204
    assert not Session.objects.filter(key=key).exists()
    assert api.get(f"/api/sessions/{key}").status_code == 404
    assert api.delete(f"/api/sessions/{key}").status_code == 404


def test_session_without_agent_goes_to_the_default_agent(api, main_agent):
    create_agent("other")
    created = api.post("/api/sessions", {}, format="json")
    assert created.status_code == 201 and created.data["agentId"] == "main"


@pytest.mark.parametrize(
    ("folder", "why"),
    [("relative/path", "absolute"), ("/etc", "outside the allowed folders")],
)
def test_folder_outside_the_roots_is_a_400_and_the_rename_does_not_happen(
    api, main_agent, folder, why
):
    session = _session(main_agent, "agent:main:main", name="Old")
    response = api.patch(
        f"/api/sessions/{session.key}", {"name": "New", "workingFolder": folder}, format="json"
    )
    assert response.status_code == 400
    assert why in response.data["workingFolder"][0]
    session.refresh_from_db()
    assert session.name == "Old" and session.working_folder == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agentId": "nobody"}, "agentId"),
        ({"agentId": "main", "name": "n" * 201}, "name"),
        ({"agentId": "main", "folder": "/srv"}, "folder"),
    ],
)
def test_bad_session_create_is_a_400(api, main_agent, body, field):
    response = api.post("/api/sessions", body, format="json")
    assert response.status_code == 400 and field in response.data, response.data
    assert not Session.objects.exists()


def test_disabled_agent_gets_no_new_session(api, main_agent):
    create_agent("off", enabled=False)
    response = api.post("/api/sessions", {"agentId": "off"}, format="json")
    assert response.status_code == 400 and "disabled" in response.data["agentId"][0]


def test_session_list_filters_and_pagination(api, main_agent):
    create_agent("support")
    _session(main_agent, "agent:main:main", name="Daily")
    _session(main_agent, "agent:main:slack:channel:c1", channel="slack")
    _session(Agent.objects.get(pk="support"), "agent:support:main", name="Escalations")

    def keys(**query):
        response = api.get("/api/sessions", query)
        assert response.status_code == 200, response.data
        return sorted(s["sessionKey"] for s in response.data["results"])

    assert keys() == ["agent:main:main", "agent:main:slack:channel:c1", "agent:support:main"]
    assert keys(agent="support") == ["agent:support:main"]
    assert keys(channel="slack") == ["agent:main:slack:channel:c1"]
    assert keys(search="escal") == ["agent:support:main"]
    assert keys(search="channel:c1") == ["agent:main:slack:channel:c1"]
    page = api.get("/api/sessions", {"limit": 1})
    assert page.data["count"] == 3 and len(page.data["results"]) == 1 and page.data["next"]


def test_session_messages_are_paginated_oldest_first(api, main_agent):
    session = _session(main_agent, "agent:main:main")
    for i in range(5):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        Message.objects.create(session=session, role=role, content=f"m{i}", position=i)
    _session(main_agent, "agent:main:other")

    page = api.get("/api/sessions/agent:main:main/messages", {"limit": 2, "offset": 2})
    assert page.status_code == 200
    assert page.data["count"] == 5
    assert [m["content"] for m in page.data["results"]] == ["m2", "m3"]
    assert page.data["results"][0] == selectors.message_data(Message.objects.get(content="m2"))
    assert api.get("/api/sessions/agent:main:other/messages").data["count"] == 0
    assert api.get("/api/sessions/agent:main:nope/messages").status_code == 404


# runs (reads and validation; starting them: test_api_e2e.py) -----------------------------
def _run(session: Session, status: str, prompt: str = "hi") -> Run:
    return Run.objects.create(session=session, source=RunSource.API, status=status, prompt=prompt)


def test_run_list_filters_and_detail(api, main_agent):
    create_agent("support")
    main = _session(main_agent, "agent:main:main")
    other = _session(Agent.objects.get(pk="support"), "agent:support:main")
    ok = _run(main, RunStatus.OK)
    failed = _run(main, RunStatus.ERROR)
    queued = _run(other, RunStatus.QUEUED)

    def ids(**query):
        response = api.get("/api/runs", query)
        assert response.status_code == 200, response.data
        return {r["runId"] for r in response.data["results"]}

    assert ids() == {ok.id, failed.id, queued.id}
    assert ids(status="error") == {failed.id}
    assert ids(session="agent:main:main") == {ok.id, failed.id}
    assert ids(agent="support") == {queued.id}
    assert ids(agent="support", status="ok") == set()

    detail = api.get(f"/api/runs/{ok.id}")
    assert detail.status_code == 200
    assert detail.data == selectors.run_data(ok)
    assert api.get("/api/runs/0123456789abcdef0123456789abcdef").status_code == 404
    assert api.post("/api/runs/0123456789abcdef0123456789abcdef/cancel").status_code == 404
    assert api.get("/api/runs/0123456789abcdef0123456789abcdef/events").status_code == 404


def test_unknown_run_status_filter_is_a_400(api, main_agent):
    response = api.get("/api/runs", {"status": "exploded"})
    assert response.status_code == 400 and "status" in response.data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": "   "}, "message"),
        ({"message": 123}, "message"),
        ({"message": 1.5}, "message"),
        ({"message": "hi", "agentId": "nobody"}, "agentId"),
        ({"message": "hi", "agentId": "off"}, "agentId"),
        ({"message": "hi", "sessionKey": "not-a-key"}, "sessionKey"),
        ({"message": "hi", "sessionKey": "agent:main:main", "agentId": "off"}, "agentId"),
        ({"message": "hi", "timeout": 0}, "timeout"),
        ({"message": "hi", "queue": "sometimes"}, "queue"),
        (
            {"message": "hi", "routing": {"channel": "slack", "peer": {"kind": "x", "id": "1"}}},
            "routing",
        ),
        ({"message": "hi", "idempotencyKey": "k" * 201}, "idempotencyKey"),
        ({"message": "hi", "prompt": "typo"}, "prompt"),
    ],
)
def test_bad_run_is_a_400_and_starts_nothing(api, main_agent, body, field):
    create_agent("off", enabled=False)
    response = api.post("/api/runs", body, format="json")
    assert response.status_code == 400, response.data
    assert field in response.data, response.data
    assert not Run.objects.exists() and not Session.objects.exists()


def test_idempotency_header_and_field_must_agree(api, main_agent):
    response = api.post(
        "/api/runs",
        {"message": "hi", "idempotencyKey": "a"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="b",
    )
    assert response.status_code == 400 and "idempotencyKey" in response.data
    too_long = api.post(
        "/api/runs", {"message": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201
    )
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.data
    assert not Run.objects.exists()


# the declared output shapes are the selectors' shapes ------------------------------------
def test_output_serializers_declare_exactly_what_the_selectors_return(main_agent):
    session = session_service.session_create(agent=main_agent, name="s")
    run = _run(session, RunStatus.OK)
    message = Message.objects.create(session=session, role="user", content="x", position=0)
    pairs = [
        (api_serializers.SessionOutput, selectors.session_data(session)),
        (api_serializers.RunOutput, selectors.run_data(run)),
        (api_serializers.MessageOutput, selectors.message_data(message)),
    ]
    for serializer, data in pairs:
        assert set(serializer().fields) == set(data), serializer.__name__


def test_run_input_declares_exactly_what_the_agent_method_takes():
    """POST /api/runs is validated by RunParams; its declared fields are RunParams' fields."""
    declared = api_serializers.RunCreateInput().fields
    model = {field.alias or name: field for name, field in RunParams.model_fields.items()}
    assert set(declared) == set(model)
    assert {name for name, f in declared.items() if f.required} == {
        name for name, f in model.items() if f.is_required()
    }
