"""Rooms admin smoke tests: changelist and search, the add form with member agents inline
(saved through the room service), the change page, the broadcast and delete actions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rooms.models import Room, RoomAgent, RoomMessage
from rooms.services import rooms as room_service
from tests.agents.conftest import create_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def room() -> Room:
    for agent_id in ("alpha", "beta"):
        create_agent(agent_id)
    return room_service.room_create(
        name="Findme room", agent_ids=["alpha", "beta"], created_by="test"
    )


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def test_changelist_search_and_change_page(admin_client, room):
    url = reverse("admin:rooms_room_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert reverse("ui:rooms") + f"?room={room.pk}" in page.content.decode()
    assert admin_client.get(url, {"q": "findme"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"q": "nothing-like-it"}).context["cl"].result_count == 0
    change = admin_client.get(reverse("admin:rooms_room_change", args=[room.pk]))
    assert change.status_code == 200
    assert admin_client.get(reverse("admin:rooms_room_add")).status_code == 200


def test_add_with_member_agents_inline(admin_client, room):
    create_agent("gamma")
    data = {
        "id": "swarm-1",
        "name": "Swarm",
        "description": "",
        "strategy": "sequential",
        "metadata": "{}",
        **inline(
            "agents", [{"agent": "gamma", "position": "0"}, {"agent": "alpha", "position": "1"}]
        ),
        **inline("messages", []),
    }
    answer = admin_client.post(reverse("admin:rooms_room_add"), data)
    assert answer.status_code == 302, answer.context and answer.context["adminform"].errors
    created = Room.objects.get(pk="swarm-1")
    assert created.strategy == "sequential" and created.created_by == "user:admin"
    assert list(
        RoomAgent.objects.filter(room=created).order_by("position").values_list("agent", flat=True)
    ) == ["gamma", "alpha"]


def test_add_refuses_a_taken_name_and_saves_nothing(admin_client, room):
    data = {
        "id": "other",
        "name": "Findme room",
        "description": "",
        "strategy": "parallel",
        "metadata": "{}",
        **inline("agents", []),
        **inline("messages", []),
    }
    answer = admin_client.post(reverse("admin:rooms_room_add"), data)
    assert answer.status_code == 200 and "name" in answer.context["adminform"].form.errors
    assert Room.objects.count() == 1


def test_broadcast_action_asks_then_posts(admin_client, room):
    empty = room_service.room_create(name="No agents")
    url = reverse("admin:rooms_room_changelist")
    ask = admin_client.post(url, {"action": "broadcast", "_selected_action": [empty.pk]})
    assert ask.status_code == 200 and b"Broadcast to 1 room(s)" in ask.content
    bad = {"action": "broadcast", "_selected_action": [empty.pk], "apply": "1", "message": ""}
    assert admin_client.post(url, bad).status_code == 200
    assert RoomMessage.objects.count() == 0
    done = admin_client.post(url, {**bad, "message": "hello room"}, follow=True)
    assert b"Broadcast to 1 room(s): 0 agent run(s)." in done.content
    entry = RoomMessage.objects.get()
    assert entry.content == "hello room" and entry.sender_id == "user:admin"


def test_delete_action_goes_through_the_service(admin_client, room):
    url = reverse("admin:rooms_room_changelist")
    asked = admin_client.post(url, {"action": "delete_selected", "_selected_action": [room.pk]})
    assert asked.status_code == 200 and b"Are you sure" in asked.content
    assert Room.objects.count() == 1
    answer = admin_client.post(
        url,
        {"action": "delete_selected", "_selected_action": [room.pk], "post": "yes"},
        follow=True,
    )
    assert b"Successfully deleted 1" in answer.content
    assert Room.objects.count() == 0 and RoomAgent.objects.count() == 0
