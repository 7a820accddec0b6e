"""The rooms REST API in-process (DRF's APIClient on the real URLconf): CRUD, member agents,
history, the OpenAPI declaration, and bad input answered 400/404/409 keyed by field with
nothing saved. Broadcasts need the server's loop: tests/rooms/test_api_e2e.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from rooms.models import Room, RoomAgent, RoomMessage
from tests.agents.conftest import create_agent
from tests.conftest import API_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def trio() -> list[str]:
    for agent_id in ("alpha", "beta", "gamma"):
        create_agent(agent_id)
    return ["alpha", "beta", "gamma"]


def counts() -> tuple[int, int, int]:
    return Room.objects.count(), RoomAgent.objects.count(), RoomMessage.objects.count()


def test_crud_with_and_without_trailing_slash(api, trio):
    created = api.post(
        "/api/rooms",
        {"name": "review", "strategy": "sequential", "agents": trio, "metadata": {"pr": 123}},
        format="json",
    )
    assert created.status_code == 201, created.data
    room = created.data
    assert room["agents"] == trio and room["strategy"] == "sequential"
    assert room["metadata"] == {"pr": 123} and room["createdBy"] == "user:gateway"
    assert isinstance(room["createdAt"], int)

    listed = api.get("/api/rooms/")
    assert listed.status_code == 200
    assert listed.data["count"] == 1 and listed.data["results"] == [room]
    assert api.get(f"/api/rooms/{room['id']}").data == room
    assert api.get("/api/rooms/review/").data["id"] == room["id"]  # by name

    patched = api.patch(
        f"/api/rooms/{room['id']}", {"description": "PRs", "agents": ["beta"]}, format="json"
    )
    assert patched.status_code == 200, patched.data
    assert patched.data["description"] == "PRs" and patched.data["agents"] == ["beta"]
    assert patched.data["strategy"] == "sequential" and patched.data["name"] == "review"

    assert api.delete(f"/api/rooms/{room['id']}").status_code == 204
    assert api.get(f"/api/rooms/{room['id']}").status_code == 404
    assert counts() == (0, 0, 0)


def test_member_agents_add_list_remove(api, trio):
    room = api.post("/api/rooms", {"name": "r", "agents": ["alpha"]}, format="json").data
    added = api.post(f"/api/rooms/{room['id']}/members", {"agentId": "gamma"}, format="json")
    assert added.status_code == 201, added.data
    assert added.data["agents"] == [
        {"agentId": "alpha", "position": 0},
        {"agentId": "gamma", "position": 1},
    ]
    assert added.data["live"] == []
    again = api.post(f"/api/rooms/{room['id']}/members", {"agentId": "gamma"}, format="json")
    assert again.status_code == 409 and again.data["code"] == "CONFLICT"
    listed = api.get(f"/api/rooms/{room['id']}/members")
    assert listed.status_code == 200 and listed.data == added.data
    assert api.delete(f"/api/rooms/{room['id']}/members/alpha").status_code == 204
    assert api.get(f"/api/rooms/{room['id']}").data["agents"] == ["gamma"]
    missing = api.delete(f"/api/rooms/{room['id']}/members/alpha")
    assert missing.status_code == 404 and missing.data["code"] == "NOT_FOUND"


def test_history_is_empty_then_bounded(api, trio):
    room = api.post("/api/rooms", {"name": "quiet"}, format="json").data
    history = api.get(f"/api/rooms/{room['id']}/history")
    assert history.status_code == 200
    assert history.data == {"roomId": room["id"], "messages": []}
    bad = api.get(f"/api/rooms/{room['id']}/history?limit=0")
    assert bad.status_code == 400 and "limit" in bad.data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "x", "strategy": "random"}, "strategy"),
        ({"name": "x", "agents": "alpha"}, "agents"),
        ({"name": "x", "agents": ["alpha", "nobody"]}, "agents"),
        ({"name": "x", "agents": ["alpha", "alpha"]}, "agents"),
        ({"name": "x", "metadata": [1]}, "metadata"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "taken"}, "name"),
    ],
)
def test_bad_create_is_400_keyed_by_field_and_saves_nothing(api, trio, body, field):
    api.post("/api/rooms", {"name": "taken"}, format="json")
    before = counts()
    answer = api.post("/api/rooms", body, format="json")
    assert answer.status_code == 400, answer.data
    assert field in answer.data, answer.data
    assert all(isinstance(m, str) and m for m in answer.data[field]), answer.data
    assert counts() == before


def test_bad_update_and_unknown_rooms(api, trio):
    api.post("/api/rooms", {"name": "other"}, format="json")
    room = api.post("/api/rooms", {"name": "r", "agents": ["alpha"]}, format="json").data
    for body, field in [
        ({"name": "other"}, "name"),
        ({"agents": ["nobody"]}, "agents"),
        ({"strategy": "x"}, "strategy"),
        ({"roomId": "elsewhere"}, "roomId"),
        ({"name": None}, "name"),
        ({"agents": None}, "agents"),
        ({"strategy": None}, "strategy"),
        ({"metadata": None}, "metadata"),
    ]:
        answer = api.patch(f"/api/rooms/{room['id']}", body, format="json")
        assert answer.status_code == 400 and field in answer.data, (body, answer.data)
    assert api.get(f"/api/rooms/{room['id']}").data == room
    for method, path, body in [
        ("get", "/api/rooms/missing", None),
        ("patch", "/api/rooms/missing", {"name": "y"}),
        ("delete", "/api/rooms/missing", None),
        ("get", "/api/rooms/missing/members", None),
        ("post", "/api/rooms/missing/members", {"agentId": "alpha"}),
        ("get", "/api/rooms/missing/history", None),
        ("post", "/api/rooms/missing/broadcast", {"message": "hi"}),
    ]:
        answer = getattr(api, method)(path, body, format="json")
        assert answer.status_code == 404, (method, path, answer.data)
        assert answer.data["code"] == "NOT_FOUND"
    unknown_agent = api.post(f"/api/rooms/{room['id']}/members", {"agentId": "no"}, format="json")
    assert unknown_agent.status_code == 404
    for body, field in [
        ({}, "message"),
        ({"message": "  "}, "message"),
        ({"message": "hi", "strategy": "x"}, "strategy"),
    ]:
        answer = api.post(f"/api/rooms/{room['id']}/broadcast", body, format="json")
        assert answer.status_code == 400 and field in answer.data, (body, answer.data)
    assert RoomMessage.objects.count() == 0


def test_unauthenticated_is_401(wingman_auth):
    wingman_auth("token", token=API_TOKEN)
    assert APIClient().get("/api/rooms").status_code == 401


def test_openapi_declares_every_status(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    expected = {
        ("/api/rooms", "get"): {"200", "401", "403"},
        ("/api/rooms", "post"): {"201", "400", "401", "403", "409"},
        ("/api/rooms/{id}", "get"): {"200", "401", "403", "404"},
        ("/api/rooms/{id}", "patch"): {"200", "400", "401", "403", "404", "409"},
        ("/api/rooms/{id}", "delete"): {"204", "400", "401", "403", "404"},
        ("/api/rooms/{id}/members", "get"): {"200", "401", "403", "404"},
        ("/api/rooms/{id}/members", "post"): {"201", "400", "401", "403", "404", "409"},
        ("/api/rooms/{id}/members/{agent_id}", "delete"): {"204", "400", "401", "403", "404"},
        ("/api/rooms/{id}/broadcast", "post"): {"202", "400", "401", "403", "404"},
        ("/api/rooms/{id}/history", "get"): {"200", "400", "401", "403", "404"},
    }
    for (path, method), statuses in expected.items():
        assert path in paths, sorted(p for p in paths if "room" in p)
        assert set(paths[path][method]["responses"]) == statuses, (path, method)


def test_history_pages_back_and_is_capped(api, trio, monkeypatch):
    room = api.post("/api/rooms", {"name": "long"}, format="json").data
    RoomMessage.objects.bulk_create(
        RoomMessage(room_id=room["id"], broadcast_id=f"b{i}", sender_kind="user", content=f"m{i}")
        for i in range(5)
    )
    last = api.get(f"/api/rooms/{room['id']}/history?limit=2").data["messages"]
    assert [m["content"] for m in last] == ["m3", "m4"]
    older = api.get(f"/api/rooms/{room['id']}/history?limit=2&before={last[0]['id']}")
    assert [m["content"] for m in older.data["messages"]] == ["m1", "m2"]
    monkeypatch.setenv("WINGMAN_ROOM_HISTORY_LIMIT", "3")
    capped = api.get(f"/api/rooms/{room['id']}/history?limit=100").data["messages"]
    assert [m["content"] for m in capped] == ["m2", "m3", "m4"]
    assert api.get(f"/api/rooms/{room['id']}/history?before=0").status_code == 400
