"""Agent and binding writes, including the import of ``wingman.config.json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, Binding, PeerKind
from agents.runtime.tools import BUILTIN_TOOLS

DEFAULT_AGENT_ID = "main"


class ConfigImportError(ValueError):
    """``agents`` in wingman.config.json is invalid; the message names the entry."""


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    bindings_created: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} agent(s) created, {self.updated} updated, "
            f"{self.bindings_created} binding(s) created"
        )


def _agent_fields(entry: dict[str, Any], where: str) -> dict[str, Any]:
    tools = entry.get("tools") or []
    unknown = sorted(set(tools) - set(BUILTIN_TOOLS))
    if unknown:
        raise ConfigImportError(
            f"{where}.tools: unknown tool(s) {unknown}; known: {sorted(BUILTIN_TOOLS)}"
        )
    return {
        "name": entry.get("name") or "",
        "model": entry.get("model") or "",
        "system_prompt": entry.get("systemPrompt") or entry.get("system_prompt") or "",
        "tools": list(tools),
        "workspace": entry.get("workspace") or "",
        "agent_dir": entry.get("agentDir") or "",
        "is_default": bool(entry.get("default")),
    }


@transaction.atomic
def agents_import(config: dict[str, Any], *, update_existing: bool) -> ImportResult:
    """Import ``agents.list`` and ``agents.bindings``; safe to run any number of times.

    On start (``update_existing=False``) agents that exist are left alone, so edits made in
    the admin survive restarts; ``wingman agents import`` updates them from the file.
    """
    section = config.get("agents") or {}
    result = ImportResult()
    listed = section.get("list") or []
    if sum(1 for e in listed if isinstance(e, dict) and e.get("default")) > 1:
        raise ConfigImportError("agents.list: more than one agent has default: true")
    for index, entry in enumerate(listed):
        where = f"agents.list[{index}]"
        if not isinstance(entry, dict) or not entry.get("id"):
            raise ConfigImportError(f"{where}: needs an 'id'")
        fields = _agent_fields(entry, where)
        agent = Agent.objects.filter(pk=entry["id"]).first()
        if agent is not None and not update_existing:
            continue
        if fields["is_default"]:
            Agent.objects.exclude(pk=entry["id"]).filter(is_default=True).update(is_default=False)
        agent = agent or Agent(id=entry["id"])
        created = agent._state.adding
        for name, value in fields.items():
            setattr(agent, name, value)
        try:
            agent.full_clean()
        except ValidationError as exc:
            raise ConfigImportError(f"{where}: {_first_error(exc)}") from exc
        agent.save()
        if created:
            result.created += 1
        else:
            result.updated += 1
    for index, entry in enumerate(section.get("bindings") or []):
        result.bindings_created += _import_binding(entry, index)
    return result


def _import_binding(entry: dict[str, Any], index: int) -> int:
    where = f"agents.bindings[{index}]"
    match = entry.get("match") if isinstance(entry, dict) else None
    if not isinstance(match, dict) or not match.get("channel"):
        raise ConfigImportError(f"{where}.match.channel: required")
    agent = Agent.objects.filter(pk=entry.get("agentId")).first()
    if agent is None:
        raise ConfigImportError(f"{where}.agentId: no agent {entry.get('agentId')!r}")
    peer = match.get("peer") or {}
    if peer and peer.get("kind") not in PeerKind.values:
        raise ConfigImportError(f"{where}.match.peer.kind: must be one of {PeerKind.values}")
    _, created = Binding.objects.get_or_create(
        agent=agent,
        channel=match["channel"],
        account_id=match.get("accountId") or "",
        guild_id=match.get("guildId") or "",
        team_id=match.get("teamId") or "",
        peer_kind=peer.get("kind") or "",
        peer_id=peer.get("id") or "",
        defaults={"order": index},
    )
    return int(created)


def ensure_default_agent() -> Agent:
    """A fresh install answers at once: create ``main`` when there is no agent at all."""
    agent = Agent.objects.filter(is_default=True).first() or Agent.objects.first()
    if agent is None:
        agent = Agent.objects.create(id=DEFAULT_AGENT_ID, name="Main", is_default=True)
    return agent


@transaction.atomic
def agent_make_default(*, agent: Agent) -> Agent:
    Agent.objects.exclude(pk=agent.pk).filter(is_default=True).update(is_default=False)
    agent.is_default = True
    agent.save(update_fields=["is_default", "updated_at"])
    return agent


# agent and binding CRUD (REST API, Control UI, admin) --------------------------------------
AGENT_FIELDS = ("name", "model", "system_prompt", "tools", "workspace", "agent_dir", "enabled")
BINDING_FIELDS = ("channel", "account_id", "guild_id", "team_id", "peer_kind", "peer_id", "order")


def _field_errors(instance: Agent | Binding) -> dict[str, list[str]]:
    """The model's own field validation (uniqueness and constraints are the database's)."""
    try:
        instance.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        return dict(exc.message_dict)
    return {}


def agent_check(agent: Agent) -> None:
    """Field validation plus what the model cannot express; raises ValidationError by field."""
    errors = _field_errors(agent)
    if not isinstance(agent.tools, list) or not all(isinstance(t, str) for t in agent.tools):
        errors.setdefault("tools", []).append("a list of tool names")
    else:
        unknown = sorted(set(agent.tools) - set(BUILTIN_TOOLS))
        if unknown:
            errors.setdefault("tools", []).append(
                f"unknown tool(s) {unknown}; known: {sorted(BUILTIN_TOOLS)}"
            )
    provider, sep, name = agent.model.partition(":")
    if agent.model and not (sep and provider and name):
        errors.setdefault("model", []).append('expected "provider:model", e.g. "openai:gpt-4o"')
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def agent_create(
    *,
    id: str,
    name: str = "",
    model: str = "",
    system_prompt: str = "",
    tools: list[str] | None = None,
    workspace: str = "",
    agent_dir: str = "",
    enabled: bool = True,
    is_default: bool = False,
) -> Agent:
    """A new agent; the first one (or ``is_default``) becomes the default."""
    if Agent.objects.filter(pk=id).exists():
        raise ValidationError({"id": [f"an agent {id!r} already exists"]})
    agent = Agent(
        id=id,
        name=name,
        model=model,
        system_prompt=system_prompt,
        tools=list(tools or []),
        workspace=workspace,
        agent_dir=agent_dir,
        enabled=enabled,
    )
    agent_check(agent)
    agent.save()
    if is_default or not Agent.objects.filter(is_default=True).exists():
        agent_make_default(agent=agent)
    return agent


@transaction.atomic
def agent_update(*, agent: Agent, is_default: bool | None = None, **changes: Any) -> Agent:
    """Change any of ``AGENT_FIELDS``; ``is_default=True`` makes it the default."""
    unknown = set(changes) - set(AGENT_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["not a field that can be changed"]})
    for field_name, value in changes.items():
        setattr(agent, field_name, value)
    agent_check(agent)
    agent.save()
    if is_default:
        agent_make_default(agent=agent)
    elif is_default is False and agent.is_default:
        agent.is_default = False
        agent.save(update_fields=["is_default", "updated_at"])
    return agent


@transaction.atomic
def agent_delete(*, agent: Agent) -> None:
    """Delete an agent with its bindings and sessions; the last agent cannot go."""
    if not Agent.objects.exclude(pk=agent.pk).exists():
        raise ValidationError({"id": ["the only agent cannot be deleted"]})
    was_default = agent.is_default
    agent.delete()
    if was_default:
        agent_make_default(agent=Agent.objects.first())


def _check_binding(binding: Binding) -> None:
    errors = _field_errors(binding)
    if bool(binding.peer_kind) != bool(binding.peer_id):
        errors.setdefault("peer_id", []).append("peer kind and peer id go together")
    if errors:
        raise ValidationError(errors)


def binding_create(*, agent: Agent, channel: str, **fields: Any) -> Binding:
    """A routing binding for ``agent`` (fields: ``BINDING_FIELDS``)."""
    unknown = set(fields) - set(BINDING_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["not a binding field"]})
    binding = Binding(agent=agent, channel=channel, **fields)
    _check_binding(binding)
    binding.save()
    return binding


def binding_update(*, binding: Binding, agent: Agent | None = None, **changes: Any) -> Binding:
    unknown = set(changes) - set(BINDING_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["not a binding field"]})
    if agent is not None:
        binding.agent = agent
    for field_name, value in changes.items():
        setattr(binding, field_name, value)
    _check_binding(binding)
    binding.save()
    return binding


def binding_delete(*, binding: Binding) -> None:
    binding.delete()


def _first_error(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        field, messages = next(iter(exc.message_dict.items()))
        return f"{field}: {messages[0]}"
    return exc.messages[0]


def bootstrap(config: dict[str, Any]) -> str:
    """On gateway start: import the config's agents (without overwriting), make sure an
    agent exists, and settle runs left behind by a process that is gone."""
    from agents.services.runs import runs_recover
    from gateway import outage
    from gateway.hub import hub_alive

    result = agents_import(config, update_existing=False)
    agent = ensure_default_agent()
    try:
        recovered = f"{runs_recover(hub_alive)} interrupted run(s) settled"
    except outage.ERRORS:  # which gateways are alive is in Redis: settle nothing blindly
        recovered = "interrupted runs not settled (Redis unreachable)"
    return f"agents: {result}; default agent {agent.id!r}; {recovered}"
