"""Agent and binding CRUD services (used by the REST API, the Control UI and the admin)."""

import pytest
from django.core.exceptions import ValidationError

from agents.models import Agent, Binding
from agents.services import agents as svc

pytestmark = pytest.mark.django_db


def test_first_agent_becomes_default_and_default_moves():
    a = svc.agent_create(id="a1", model="openai:gpt-4o", tools=["read_file"])
    assert a.is_default
    b = svc.agent_create(id="b", is_default=True)
    a.refresh_from_db()
    assert b.is_default and not a.is_default
    svc.agent_update(agent=a, name="A", is_default=True)
    b.refresh_from_db()
    assert not b.is_default and Agent.objects.get(pk="a1").name == "A"


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"id": "Bad id"}, "id"),
        ({"id": "b", "model": "nocolon"}, "model"),
        ({"id": "b", "model": ":x"}, "model"),
        ({"id": "b", "tools": ["nope"]}, "tools"),
        ({"id": "b", "tools": "read_file"}, "tools"),
    ],
)
def test_invalid_agent_is_refused_by_field_and_nothing_is_written(fields, bad_field):
    with pytest.raises(ValidationError) as err:
        svc.agent_create(**fields)
    assert bad_field in err.value.message_dict
    assert not Agent.objects.exists()


def test_duplicate_id_and_unknown_update_field_are_refused():
    a = svc.agent_create(id="a1")
    with pytest.raises(ValidationError) as err:
        svc.agent_create(id="a1")
    assert "id" in err.value.message_dict
    with pytest.raises(ValidationError):
        svc.agent_update(agent=a, id="other")


def test_delete_moves_default_and_keeps_the_last_agent():
    a = svc.agent_create(id="a1")
    b = svc.agent_create(id="b")
    svc.agent_delete(agent=a)
    b.refresh_from_db()
    assert b.is_default
    with pytest.raises(ValidationError):
        svc.agent_delete(agent=b)
    assert Agent.objects.filter(pk="b").exists()


def test_binding_crud_and_peer_pairing():
    agent = svc.agent_create(id="a1")
    binding = svc.binding_create(agent=agent, channel="webui", peer_kind="dm", peer_id="u1")
    with pytest.raises(ValidationError) as err:
        svc.binding_create(agent=agent, channel="webui", peer_kind="dm")
    assert "peer_id" in err.value.message_dict
    with pytest.raises(ValidationError):
        svc.binding_create(agent=agent, channel="")
    svc.binding_update(binding=binding, order=3)
    assert Binding.objects.get(pk=binding.pk).order == 3
    svc.binding_delete(binding=binding)
    assert not Binding.objects.exists()
