"""Importing ``agents`` from wingman.config.json (seed 001 "Agents and Routing")."""

from __future__ import annotations

import copy

import pytest

from agents.models import Agent, Binding
from agents.routing import Peer, Route, match_binding
from agents.services.agents import (
    ConfigImportError,
    agents_import,
    bootstrap,
    ensure_default_agent,
)

pytestmark = pytest.mark.django_db

SEED_EXAMPLE = {
    "agents": {
        "list": [
            {"id": "main", "default": True, "workspace": "~/wingman-main"},
            {"id": "support", "workspace": "~/wingman-support"},
        ],
        "bindings": [
            {
                "agentId": "support",
                "match": {"channel": "webui", "peer": {"kind": "dm", "id": "user-123"}},
            },
            {"agentId": "main", "match": {"channel": "webui"}},
        ],
    }
}

AGENT_FIELDS = (
    "id",
    "name",
    "model",
    "system_prompt",
    "tools",
    "workspace",
    "agent_dir",
    "is_default",
    "enabled",
)
BINDING_FIELDS = (
    "id",
    "agent_id",
    "channel",
    "account_id",
    "guild_id",
    "team_id",
    "peer_kind",
    "peer_id",
    "order",
)


def snapshot() -> tuple[list, list]:
    return (
        list(Agent.objects.order_by("id").values_list(*AGENT_FIELDS)),
        list(Binding.objects.order_by("id").values_list(*BINDING_FIELDS)),
    )


def config(**changes) -> dict:
    cfg = copy.deepcopy(SEED_EXAMPLE)
    cfg["agents"].update(changes)
    return cfg


def test_seed_example_creates_agents_and_bindings():
    result = agents_import(SEED_EXAMPLE, update_existing=False)
    assert (result.created, result.updated, result.bindings_created) == (2, 0, 2)
    assert str(result) == "2 agent(s) created, 0 updated, 2 binding(s) created"
    main, support = Agent.objects.get(pk="main"), Agent.objects.get(pk="support")
    assert main.is_default and not support.is_default
    assert (main.workspace, support.workspace) == ("~/wingman-main", "~/wingman-support")
    bindings = list(Binding.objects.order_by("order").values_list(*BINDING_FIELDS[1:]))
    assert bindings == [
        ("support", "webui", "", "", "", "dm", "user-123", 0),
        ("main", "webui", "", "", "", "", "", 1),
    ]
    # and routing follows them
    dm = Route(channel="webui", peer=Peer("dm", "user-123"))
    assert match_binding(Binding.objects.all(), dm).agent_id == "support"
    other = Route(channel="webui", peer=Peer("dm", "user-999"))
    assert match_binding(Binding.objects.all(), other).agent_id == "main"


def test_every_agent_field_is_imported():
    cfg = {
        "agents": {
            "list": [
                {
                    "id": "coder",
                    "name": "Coder",
                    "model": "wingman:slow",
                    "systemPrompt": "You write code.",
                    "tools": ["read_file", "list_files"],
                    "workspace": "/w",
                    "agentDir": "/w/.agent",
                    "default": True,
                }
            ]
        }
    }
    agents_import(cfg, update_existing=False)
    coder = Agent.objects.get(pk="coder")
    assert (
        coder.name,
        coder.model,
        coder.system_prompt,
        coder.tools,
        coder.workspace,
        coder.agent_dir,
        coder.is_default,
    ) == (
        "Coder",
        "wingman:slow",
        "You write code.",
        ["read_file", "list_files"],
        "/w",
        "/w/.agent",
        True,
    )


@pytest.mark.parametrize("update_existing", [False, True])
def test_importing_twice_changes_nothing(update_existing):
    agents_import(SEED_EXAMPLE, update_existing=False)
    before = snapshot()
    result = agents_import(SEED_EXAMPLE, update_existing=update_existing)
    assert result.created == 0 and result.bindings_created == 0
    assert result.updated == (2 if update_existing else 0)
    assert snapshot() == before


def test_without_update_admin_edits_survive_and_with_update_the_file_wins():
    agents_import(SEED_EXAMPLE, update_existing=False)
    Agent.objects.filter(pk="main").update(model="wingman:slow", name="Edited in admin")
    Agent.objects.filter(pk="support").update(tools=["read_file"])

    agents_import(SEED_EXAMPLE, update_existing=False)
    main, support = Agent.objects.get(pk="main"), Agent.objects.get(pk="support")
    assert (main.model, main.name, support.tools) == (
        "wingman:slow",
        "Edited in admin",
        ["read_file"],
    )

    result = agents_import(SEED_EXAMPLE, update_existing=True)
    assert result.updated == 2
    main, support = Agent.objects.get(pk="main"), Agent.objects.get(pk="support")
    assert (main.model, main.name, support.tools) == ("", "", [])


def test_admin_default_choice_survives_a_restart_import():
    agents_import(SEED_EXAMPLE, update_existing=False)
    Agent.objects.filter(pk="main").update(is_default=False)
    Agent.objects.filter(pk="support").update(is_default=True)
    agents_import(SEED_EXAMPLE, update_existing=False)
    assert list(Agent.objects.filter(is_default=True).values_list("id", flat=True)) == ["support"]
    agents_import(SEED_EXAMPLE, update_existing=True)
    assert list(Agent.objects.filter(is_default=True).values_list("id", flat=True)) == ["main"]


def test_new_bindings_are_added_existing_ones_kept():
    agents_import(SEED_EXAMPLE, update_existing=False)
    more = config(
        bindings=[
            *SEED_EXAMPLE["agents"]["bindings"],
            {"agentId": "support", "match": {"channel": "discord", "accountId": "bot2"}},
        ]
    )
    result = agents_import(more, update_existing=False)
    assert result.bindings_created == 1
    assert Binding.objects.count() == 3
    assert Binding.objects.get(channel="discord").account_id == "bot2"


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"list": [{"id": "main"}, {"workspace": "~/x"}]}, "agents.list[1]"),
        ({"list": [{"id": "main"}, "support"]}, "agents.list[1]"),
        ({"list": [{"id": "main", "tools": ["shell", "read_file"]}]}, "agents.list[0].tools"),
        (
            {"list": [{"id": "a", "default": True}, {"id": "b", "default": True}]},
            "agents.list",
        ),
        ({"list": [{"id": "Bad Id!"}]}, "agents.list[0]"),
        ({"list": [{"id": "main", "model": "nocolon"}]}, "agents.list[0].model"),
        ({"list": [{"id": "main", "model": 5}]}, "agents.list[0].model"),
        ({"list": [{"id": "main", "tools": "read_file"}]}, "agents.list[0].tools"),
        ({"list": [{"id": "main", "systemPrompt": ["x"]}]}, "agents.list[0].systemPrompt"),
        ({"list": {"id": "main"}}, "agents.list: must be a list"),
        ({"bindings": {"agentId": "main"}}, "agents.bindings: must be a list"),
        (
            {
                "bindings": [
                    {"agentId": "main", "match": {"channel": "webui"}},
                    {"agentId": "ghost", "match": {"channel": "webui"}},
                ]
            },
            "agents.bindings[1].agentId",
        ),
        ({"bindings": [{"agentId": "main", "match": {}}]}, "agents.bindings[0].match.channel"),
        ({"bindings": [{"agentId": "main"}]}, "agents.bindings[0]"),
        (
            {
                "bindings": [
                    {"agentId": "main", "match": {"channel": "c", "peer": {"kind": "x", "id": "1"}}}
                ]
            },
            "agents.bindings[0].match.peer.kind",
        ),
    ],
    ids=[
        "no-id",
        "not-an-object",
        "unknown-tool",
        "two-defaults",
        "invalid-id",
        "model-without-provider",
        "model-not-a-string",
        "tools-not-a-list",
        "prompt-not-a-string",
        "list-not-a-list",
        "bindings-not-a-list",
        "unknown-agent",
        "no-channel",
        "no-match",
        "bad-peer-kind",
    ],
)
def test_invalid_entries_name_the_entry_and_import_nothing(changes, names):
    with pytest.raises(ConfigImportError) as err:
        agents_import(config(**changes), update_existing=True)
    assert names in str(err.value), str(err.value)
    assert Agent.objects.count() == 0 and Binding.objects.count() == 0


def test_error_messages_say_what_is_wrong():
    with pytest.raises(ConfigImportError, match=r"unknown tool\(s\) \['shell'\]"):
        agents_import(config(list=[{"id": "x", "tools": ["shell"]}]), update_existing=False)
    with pytest.raises(ConfigImportError, match="no agent 'ghost'"):
        agents_import(
            config(bindings=[{"agentId": "ghost", "match": {"channel": "c"}}]),
            update_existing=False,
        )
    with pytest.raises(ConfigImportError, match="default"):
        agents_import(
            config(list=[{"id": "a", "default": True}, {"id": "b", "default": True}]),
            update_existing=False,
        )


def test_a_failed_import_leaves_the_database_as_it_was():
    agents_import(SEED_EXAMPLE, update_existing=False)
    before = snapshot()
    bad = config(
        list=[
            {"id": "main", "model": "wingman:slow"},
            {"id": "new-one"},
            {"id": "x", "tools": ["?"]},
        ]
    )
    with pytest.raises(ConfigImportError):
        agents_import(bad, update_existing=True)
    assert snapshot() == before


def test_an_agents_section_that_is_not_an_object_is_refused():
    with pytest.raises(ConfigImportError, match=r"^agents: must be an object$"):
        agents_import({"agents": [{"id": "main"}]}, update_existing=True)


def test_empty_or_missing_section_imports_nothing():
    for cfg in ({}, {"agents": {}}, {"agents": {"list": [], "bindings": []}}):
        result = agents_import(cfg, update_existing=True)
        assert (result.created, result.updated, result.bindings_created) == (0, 0, 0)
    assert Agent.objects.count() == 0


def test_ensure_default_agent_creates_main_on_an_empty_database_only():
    main = ensure_default_agent()
    assert (main.id, main.is_default) == ("main", True)
    assert main.tools == ["list_files", "read_file"]  # the README's /tool list_files works
    assert ensure_default_agent().id == "main"
    assert Agent.objects.count() == 1


def test_ensure_default_agent_keeps_existing_agents():
    Agent.objects.create(id="first")
    Agent.objects.create(id="second")
    assert ensure_default_agent().id == "first"
    Agent.objects.filter(pk="second").update(is_default=True)
    assert ensure_default_agent().id == "second"
    assert not Agent.objects.filter(pk="main").exists()


def test_bootstrap_imports_then_ensures_a_default():
    summary = bootstrap(SEED_EXAMPLE)
    assert "2 agent(s) created" in summary and "default agent 'main'" in summary
    assert bootstrap(SEED_EXAMPLE).startswith("agents: 0 agent(s) created, 0 updated, 0 binding(s)")
    Agent.objects.all().delete()
    assert "default agent 'main'" in bootstrap({})
    assert list(Agent.objects.values_list("id", flat=True)) == ["main"]
