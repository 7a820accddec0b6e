"""Agent and binding CRUD services (used by the REST API, the Control UI and the admin)."""

import pytest
from django.core.exceptions import ValidationError

from agents.models import Agent, Binding, Message, MessageRole, Session
from agents.services import agents as svc
from agents.services import sessions as session_service
from gateway.protocol.errors import ErrorCode, GatewayError

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


def test_delete_keeps_the_default_and_the_last_agent():
    a = svc.agent_create(id="a1")
    b = svc.agent_create(id="b")
    with pytest.raises(GatewayError, match="default agent; make another agent the default"):
        svc.agent_delete(agent=a, force=True)  # routing would silently move: never, not forced
    assert Agent.objects.get(pk="a1").is_default
    svc.agent_make_default(agent=b)
    svc.agent_delete(agent=a)
    with pytest.raises(ValidationError, match="the only agent"):
        svc.agent_delete(agent=Agent.objects.get(pk="b"))
    assert list(Agent.objects.values_list("id", "is_default")) == [("b", True)]


def test_delete_with_sessions_needs_force_and_changes_nothing_without():
    svc.agent_create(id="main")
    helper = svc.agent_create(id="helper")
    for name in ("one", "two"):
        session = session_service.session_create(agent=helper, name=name)
        Message.objects.create(session=session, role=MessageRole.USER, content="hi", position=0)
    with pytest.raises(svc.AgentHasSessions) as refused:
        svc.agent_delete(agent=helper)
    assert refused.value.code == ErrorCode.CONFLICT and refused.value.sessions == 2
    assert "has 2 session(s)" in refused.value.message
    assert Agent.objects.filter(pk="helper").exists()
    assert (Session.objects.count(), Message.objects.count()) == (2, 2)
    svc.agent_delete(agent=helper, force=True)
    assert not Agent.objects.filter(pk="helper").exists()
    assert (Session.objects.count(), Message.objects.count()) == (0, 0)


def test_deleting_several_agents_is_all_or_none():
    svc.agent_create(id="main")
    idle, busy = svc.agent_create(id="idle"), svc.agent_create(id="busy")
    session_service.session_create(agent=busy, name="s")
    with pytest.raises(svc.AgentHasSessions):
        svc.agents_delete(agents=[idle, busy])
    assert set(Agent.objects.values_list("id", flat=True)) == {"main", "idle", "busy"}
    svc.agent_update(agent=Agent.objects.get(pk="main"), is_default=False)  # no default now
    with pytest.raises(ValidationError, match="the only agent"):
        svc.agents_delete(agents=list(Agent.objects.all()), force=True)
    assert Agent.objects.count() == 3


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
