"""Routing (seed 001 "Bindings and Routing") and session keys ("Sessions and Session Keys").

Priority, most specific first: peer > guildId/teamId > accountId > channel > default agent;
ties by ``order`` then id. Explicit ``agentId`` / ``sessionKey`` go through the run service.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from agents.models import Agent, Binding, Run, Session
from agents.routing import (
    Peer,
    Route,
    agent_of_session_key,
    default_agent,
    match_binding,
    routine_session_key,
    session_key,
    webhook_session_key,
)
from agents.services.runs import RunRequest
from agents.services.runs.accept import accept
from gateway.protocol.errors import ErrorCode, GatewayError
from tests.agents.conftest import acreate_agent

_ids = iter(range(1, 10_000))


def binding(agent: str, channel: str = "discord", **fields) -> Binding:
    """An unsaved binding with an id (ties break on it)."""
    fields.setdefault("id", next(_ids))
    return Binding(agent_id=agent, channel=channel, **fields)


DISCORD = Route(
    channel="discord",
    account_id="bot1",
    guild_id="g1",
    team_id="t1",
    peer=Peer("channel", "123456"),
)


# --------------------------------------------------------------------------------------
# the priority list
# --------------------------------------------------------------------------------------
def all_tiers() -> dict[str, Binding]:
    return {
        "peer": binding("peer-agent", peer_kind="channel", peer_id="123456", order=9),
        "guild": binding("guild-agent", guild_id="g1", order=0),
        "team": binding("team-agent", team_id="t1", order=1),
        "account": binding("account-agent", account_id="bot1", order=0),
        "channel": binding("channel-agent", order=0),
    }


def test_peer_beats_guild_team_account_and_channel():
    tiers = all_tiers()
    # least specific first, so neither list order nor ``order`` can explain the winner
    listed = [tiers[k] for k in ("channel", "account", "team", "guild", "peer")]
    assert match_binding(listed, DISCORD).agent_id == "peer-agent"


@pytest.mark.parametrize(
    ("removed", "winner"),
    [
        (("peer",), "guild-agent"),
        (("peer", "guild"), "team-agent"),
        (("peer", "guild", "team"), "account-agent"),
        (("peer", "guild", "team", "account"), "channel-agent"),
    ],
    ids=["guild", "team", "account", "channel"],
)
def test_each_tier_beats_the_ones_below(removed, winner):
    tiers = all_tiers()
    listed = [b for k, b in reversed(list(tiers.items())) if k not in removed]
    assert match_binding(listed, DISCORD).agent_id == winner


def test_team_beats_account_even_with_a_lower_order():
    listed = [
        binding("account-agent", account_id="bot1", order=0),
        binding("team-agent", team_id="t1", order=50),
    ]
    assert match_binding(listed, DISCORD).agent_id == "team-agent"


def test_nothing_matches_gives_none_and_routing_falls_to_the_default():
    listed = [binding("x", channel="slack"), binding("y", account_id="other")]
    assert match_binding(listed, DISCORD) is None
    assert match_binding([], DISCORD) is None


def test_peer_kind_mismatch_does_not_match():
    listed = [
        binding("group-agent", peer_kind="group", peer_id="123456"),
        binding("channel-agent"),
    ]
    assert match_binding(listed, DISCORD).agent_id == "channel-agent"
    as_group = Route(channel="discord", peer=Peer("group", "123456"))
    assert match_binding(listed, as_group).agent_id == "group-agent"


def test_peer_id_mismatch_and_missing_peer_do_not_match():
    listed = [binding("peer-agent", peer_kind="channel", peer_id="999"), binding("fallback")]
    assert match_binding(listed, DISCORD).agent_id == "fallback"
    no_peer = Route(channel="discord")
    only_peer = [binding("peer-agent", peer_kind="channel", peer_id="123456")]
    assert match_binding(only_peer, no_peer) is None


def test_binding_with_account_does_not_match_a_message_without_it():
    listed = [binding("bot2-agent", account_id="bot2")]
    assert match_binding(listed, Route(channel="discord")) is None
    assert match_binding(listed, Route(channel="discord", account_id="bot1")) is None
    assert match_binding(listed, Route(channel="discord", account_id="bot2")).agent_id == (
        "bot2-agent"
    )


def test_every_field_a_binding_sets_must_match():
    # a peer binding that also names an account matches only on that account
    strict = binding("strict", account_id="bot9", peer_kind="channel", peer_id="123456")
    assert match_binding([strict], DISCORD) is None
    other_guild = binding("guild-x", guild_id="g-other")
    assert match_binding([other_guild], DISCORD) is None
    other_channel = binding("slack-agent", channel="slack", peer_kind="channel", peer_id="123456")
    assert match_binding([other_channel], DISCORD) is None


def test_tie_in_a_tier_is_broken_by_order():
    first = binding("low-order", order=1, id=900)
    second = binding("high-order", order=5, id=1)
    assert match_binding([second, first], DISCORD).agent_id == "low-order"
    assert match_binding([first, second], DISCORD).agent_id == "low-order"


def test_tie_with_equal_order_is_broken_by_id():
    older = binding("older", order=3, id=10)
    newer = binding("newer", order=3, id=11)
    assert match_binding([newer, older], DISCORD).agent_id == "older"
    assert match_binding([older, newer], DISCORD).agent_id == "older"


def test_guild_and_team_are_one_tier():
    guild = binding("guild-agent", guild_id="g1", order=2)
    team = binding("team-agent", team_id="t1", order=1)
    assert match_binding([guild, team], DISCORD).agent_id == "team-agent"


def test_default_agent_is_the_flagged_one_else_the_first():
    a, b, c = Agent(id="a"), Agent(id="b", is_default=True), Agent(id="c")
    assert default_agent([a, b, c]).id == "b"
    assert default_agent([a, c]).id == "a"
    assert default_agent(iter([c, a])).id == "c"
    assert default_agent([]) is None


@pytest.mark.django_db
def test_bindings_from_the_database_order_by_order_then_id():
    main = Agent.objects.create(id="main", is_default=True)
    support = Agent.objects.create(id="support")
    Binding.objects.create(agent=main, channel="webui", order=1)
    Binding.objects.create(agent=support, channel="webui", order=1)
    Binding.objects.create(agent=support, channel="webui", peer_kind="dm", peer_id="user-123")
    route = Route(channel="webui", peer=Peer("dm", "user-123"))
    assert match_binding(Binding.objects.all(), route).agent_id == "support"
    other = Route(channel="webui", peer=Peer("dm", "user-456"))
    assert match_binding(Binding.objects.all(), other).agent_id == "main"  # older id
    assert default_agent(Agent.objects.all()).id == "main"


# --------------------------------------------------------------------------------------
# session keys (seed 001 table)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("agent", "route", "key"),
    [
        ("main", None, "agent:main:main"),
        ("main", Route(), "agent:main:main"),
        ("main", Route(channel="discord"), "agent:main:main"),
        ("main", Route(channel="webui", peer=Peer("dm", "user-123")), "agent:main:main"),
        (
            "main",
            Route(channel="discord", peer=Peer("dm", "u1"), account_id="bot2", thread_id="7"),
            "agent:main:main",
        ),
        (
            "main",
            Route(channel="discord", peer=Peer("channel", "123456")),
            "agent:main:discord:channel:123456",
        ),
        (
            "main",
            Route(channel="discord", peer=Peer("channel", "123456"), thread_id="789"),
            "agent:main:discord:channel:123456:thread:789",
        ),
        (
            "support",
            Route(channel="whatsapp", peer=Peer("group", "1203...@g.us")),
            "agent:support:whatsapp:group:1203...@g.us",
        ),
        (
            "main",
            Route(channel="discord", account_id="bot2", peer=Peer("channel", "123456")),
            "agent:main:discord:account:bot2:channel:123456",
        ),
        (
            "main",
            Route(
                channel="discord",
                account_id="bot2",
                peer=Peer("channel", "123456"),
                thread_id="789",
            ),
            "agent:main:discord:account:bot2:channel:123456:thread:789",
        ),
    ],
    ids=[
        "no-routing",
        "empty-route",
        "channel-without-peer",
        "dm-collapses-to-main",
        "dm-with-account-and-thread-collapses",
        "discord-channel",
        "discord-thread",
        "whatsapp-group",
        "account-inserted",
        "account-and-thread",
    ],
)
def test_session_key_table(agent, route, key):
    assert session_key(agent, route) == key
    assert agent_of_session_key(key) == agent


def test_routine_and_webhook_session_keys():
    assert routine_session_key("main", "r1") == "agent:main:routine:r1"
    assert routine_session_key("support", 42) == "agent:support:routine:42"
    assert webhook_session_key("main", "gmail") == "agent:main:webhook:gmail"
    assert webhook_session_key("ops", 7) == "agent:ops:webhook:7"
    assert agent_of_session_key("agent:ops:webhook:7") == "ops"


@pytest.mark.parametrize("key", ["", "main", "agent:", "agent::main", "session:main:x"])
def test_agent_of_an_invalid_session_key_is_none(key):
    assert agent_of_session_key(key) is None


# --------------------------------------------------------------------------------------
# through the run service: routing, explicit agentId / sessionKey
# --------------------------------------------------------------------------------------
pytestmark_db = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def seed_agents(hub_cleanup):
    """main (default) and support; support gets DM user-123 on webui, main all of webui,
    and discord channel 123456 is bound to ops."""
    main = await acreate_agent("main", is_default=True)
    support = await acreate_agent("support")
    ops = await acreate_agent("ops")
    await Binding.objects.acreate(
        agent=support, channel="webui", peer_kind="dm", peer_id="user-123"
    )
    await Binding.objects.acreate(agent=main, channel="webui")
    await Binding.objects.acreate(
        agent=ops, channel="discord", peer_kind="channel", peer_id="123456"
    )
    return main, support, ops


async def submit(message: str = "hi", **fields):
    """Accept (route and persist) a run the way run_start does, without executing it."""
    request = RunRequest(message=message, **fields)
    ticket, _ = await database_sync_to_async(accept)(request, executor="local", owner=None)
    return ticket


@pytestmark_db
async def test_run_service_routes_by_binding(seed_agents):
    dm = Route(channel="webui", peer=Peer("dm", "user-123"))
    ticket = await submit(route=dm)
    assert (ticket.agent_id, ticket.session_key) == ("support", "agent:support:main")
    ticket = await submit(route=Route(channel="webui", peer=Peer("dm", "user-456")))
    assert (ticket.agent_id, ticket.session_key) == ("main", "agent:main:main")
    ticket = await submit(route=Route(channel="discord", peer=Peer("channel", "123456")))
    assert ticket.session_key == "agent:ops:discord:channel:123456"
    session = await Session.objects.aget(key=ticket.session_key)
    assert (session.agent_id, session.channel, session.peer_kind, session.peer_id) == (
        "ops",
        "discord",
        "channel",
        "123456",
    )


@pytestmark_db
async def test_run_service_without_routing_uses_the_default_agent(seed_agents):
    ticket = await submit()
    assert (ticket.agent_id, ticket.session_key) == ("main", "agent:main:main")
    unbound = await submit(route=Route(channel="telegram", peer=Peer("group", "g")))
    assert unbound.agent_id == "main"
    assert unbound.session_key == "agent:main:telegram:group:g"


@pytestmark_db
async def test_disabled_agent_bindings_are_skipped(seed_agents):
    await Agent.objects.filter(pk="support").aupdate(enabled=False)
    ticket = await submit(route=Route(channel="webui", peer=Peer("dm", "user-123")))
    assert ticket.agent_id == "main"


@pytestmark_db
async def test_explicit_agent_id_wins_over_bindings(seed_agents):
    dm = Route(channel="webui", peer=Peer("dm", "user-123"))
    ticket = await submit(agent_id="ops", route=dm)
    assert (ticket.agent_id, ticket.session_key) == ("ops", "agent:ops:main")
    chan = Route(channel="discord", peer=Peer("channel", "123456"))
    ticket = await submit(agent_id="support", route=chan)
    assert ticket.session_key == "agent:support:discord:channel:123456"


@pytestmark_db
async def test_explicit_session_key_wins_over_routing(seed_agents):
    dm = Route(channel="webui", peer=Peer("dm", "user-123"))
    ticket = await submit(session_key="agent:ops:custom:thread", route=dm)
    assert (ticket.agent_id, ticket.session_key) == ("ops", "agent:ops:custom:thread")
    # the same key again lands in the same session, with or without a matching agentId
    again = await submit(session_key="agent:ops:custom:thread", agent_id="ops")
    assert again.session_key == ticket.session_key
    assert await Session.objects.filter(key="agent:ops:custom:thread").acount() == 1
    assert await Run.objects.filter(session__key="agent:ops:custom:thread").acount() == 2


@pytestmark_db
async def test_agent_id_contradicting_session_key_is_a_conflict(seed_agents):
    with pytest.raises(GatewayError) as err:
        await submit(agent_id="support", session_key="agent:main:main")
    assert err.value.code == ErrorCode.CONFLICT
    assert "support" in err.value.message and "agent:main:main" in err.value.message
    assert await Run.objects.acount() == 0


@pytestmark_db
async def test_invalid_session_key_and_unknown_agent(seed_agents):
    with pytest.raises(GatewayError) as err:
        await submit(session_key="not-a-session-key")
    assert err.value.code == ErrorCode.INVALID_REQUEST
    with pytest.raises(GatewayError) as err:
        await submit(agent_id="ghost")
    assert err.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(GatewayError) as err:
        await submit(session_key="agent:ghost:main")
    assert err.value.code == ErrorCode.NOT_FOUND
    assert await Run.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
async def test_no_agent_at_all_is_not_found(hub_cleanup):
    with pytest.raises(GatewayError) as err:
        await submit()
    assert err.value.code == ErrorCode.NOT_FOUND
