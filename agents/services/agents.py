"""Agent and binding writes, including the import of ``wingman.config.json``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, Binding, PeerKind, Session
from agents.runtime.toolnames import BUILTIN_TOOL_NAMES, is_known
from gateway.protocol.errors import ErrorCode, GatewayError

DEFAULT_AGENT_ID = "main"
#: Tools of the agent a fresh state dir (or ``wingman init``) starts with: reading only.
STARTER_TOOLS = ("list_files", "read_file")


class ConfigImportError(ValueError):
    """``agents`` in wingman.config.json is invalid; ``where`` names the entry and key."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


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


#: config key → Agent field, for the text fields of an ``agents.list`` entry.
_TEXT_KEYS = {
    "name": "name",
    "model": "model",
    "systemPrompt": "system_prompt",
    "workspace": "workspace",
    "agentDir": "agent_dir",
}
_CONFIG_KEY = {field: key for key, field in _TEXT_KEYS.items()} | {"is_default": "default"}


def _agent_fields(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The Agent fields of a config entry; types are checked here, values by agent_check."""
    fields: dict[str, Any] = {}
    for key, field in _TEXT_KEYS.items():
        value = entry.get(key)
        if value is None and key == "systemPrompt":
            value = entry.get("system_prompt")
        if value is not None and not isinstance(value, str):
            raise ConfigImportError(f"{where}.{key}", "must be a string")
        fields[field] = value or ""
    default = entry.get("default", False)
    if not isinstance(default, bool):
        raise ConfigImportError(f"{where}.default", "must be true or false")
    tools = entry.get("tools")
    fields.update(tools=[] if tools is None else tools, is_default=default)
    return fields


def _checked_agents(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``agents.list`` as {id: Agent fields}, every entry checked by the rules the API and
    the admin use (agent_check); raises ConfigImportError for the first bad one."""
    section = config.get("agents") or {}
    if not isinstance(section, dict):
        raise ConfigImportError("agents", "must be an object")
    listed = section.get("list") or []
    if not isinstance(listed, list):
        raise ConfigImportError("agents.list", "must be a list")
    if not isinstance(section.get("bindings") or [], list):
        raise ConfigImportError("agents.bindings", "must be a list")
    if sum(1 for e in listed if isinstance(e, dict) and e.get("default") is True) > 1:
        raise ConfigImportError("agents.list", "more than one agent has default: true")
    checked: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(listed):
        where = f"agents.list[{index}]"
        if not isinstance(entry, dict) or not entry.get("id"):
            raise ConfigImportError(where, "needs an 'id'")
        if not isinstance(entry["id"], str):
            raise ConfigImportError(f"{where}.id", "must be a string")
        if entry["id"] in checked:
            raise ConfigImportError(f"{where}.id", f"{entry['id']!r} is listed twice")
        fields = _agent_fields(entry, where)
        try:
            agent_check(Agent(id=entry["id"], **fields))
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            raise ConfigImportError(
                f"{where}.{_CONFIG_KEY.get(field, field)}", messages[0]
            ) from exc
        checked[entry["id"]] = fields
    return checked


def agents_config_check(config: dict[str, Any]) -> None:
    """Check ``agents.list`` without touching the database (``wingman init`` before it
    writes anything); bindings need the database and are checked by agents_import."""
    _checked_agents(config)


@transaction.atomic
def agents_import(config: dict[str, Any], *, update_existing: bool) -> ImportResult:
    """Import ``agents.list`` and ``agents.bindings``; safe to run any number of times.

    Every entry is checked before anything is written, and the import is one transaction:
    a bad entry imports nothing. On start (``update_existing=False``) agents that exist are
    left alone, so edits made in the admin survive restarts; ``wingman agents import``
    updates them from the file.
    """
    result = ImportResult()
    for agent_id, fields in _checked_agents(config).items():
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is not None and not update_existing:
            continue
        if fields["is_default"]:
            Agent.objects.exclude(pk=agent_id).filter(is_default=True).update(is_default=False)
        agent = agent or Agent(id=agent_id)
        created = agent._state.adding
        for name, value in fields.items():
            setattr(agent, name, value)
        agent.save()
        if created:
            result.created += 1
        else:
            result.updated += 1
    for index, entry in enumerate((config.get("agents") or {}).get("bindings") or []):
        result.bindings_created += _import_binding(entry, index)
    return result


def _import_binding(entry: dict[str, Any], index: int) -> int:
    where = f"agents.bindings[{index}]"
    match = entry.get("match") if isinstance(entry, dict) else None
    if not isinstance(match, dict) or not match.get("channel"):
        raise ConfigImportError(f"{where}.match.channel", "required")
    agent = Agent.objects.filter(pk=entry.get("agentId")).first()
    if agent is None:
        raise ConfigImportError(f"{where}.agentId", f"no agent {entry.get('agentId')!r}")
    peer = match.get("peer") or {}
    if peer and peer.get("kind") not in PeerKind.values:
        raise ConfigImportError(f"{where}.match.peer.kind", f"must be one of {PeerKind.values}")
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
    """A fresh install answers at once: create ``main`` (the starter tools, as ``wingman
    init`` gives it, so the README's ``/tool list_files {}`` works) when there is no agent."""
    agent = Agent.objects.filter(is_default=True).first() or Agent.objects.first()
    if agent is None:
        agent = Agent.objects.create(
            id=DEFAULT_AGENT_ID, name="Main", tools=list(STARTER_TOOLS), is_default=True
        )
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
        unknown = sorted(t for t in agent.tools if not is_known(t))
        if unknown:
            errors.setdefault("tools", []).append(
                f"unknown tool(s) {unknown}; known: {sorted(BUILTIN_TOOL_NAMES)} "
                "and node tools node:<nodeId|name>:<command|*>"
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


class AgentHasSessions(GatewayError):
    """Deleting the agent would delete its sessions and their history: refused unless
    forced (each entry point says how: ``?force=true``, a checkbox, the admin's page)."""

    def __init__(self, agent_id: str, sessions: int) -> None:
        super().__init__(
            ErrorCode.CONFLICT,
            f"agent {agent_id!r} has {sessions} session(s); deleting it deletes them with "
            "their messages and runs",
            details={"sessions": sessions},
        )
        self.sessions = sessions


def agents_delete_check(*, agents: Sequence[Agent], force: bool = False) -> None:
    """Raise unless ``agents`` may be deleted together: one agent always remains, the
    default agent is never deleted (make another one the default first: routing would
    silently change), and an agent with sessions only when ``force``."""
    ids = [agent.pk for agent in agents]
    if not Agent.objects.exclude(pk__in=ids).exists():
        raise ValidationError({"id": ["the only agent cannot be deleted"]})
    default = Agent.objects.filter(pk__in=ids, is_default=True).first()  # as stored now
    if default is not None:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"agent {default.pk!r} is the default agent; make another agent the default first",
        )
    for agent in agents:
        sessions = Session.objects.filter(agent=agent).count()
        if sessions and not force:
            raise AgentHasSessions(agent.pk, sessions)


@transaction.atomic
def agents_delete(*, agents: Sequence[Agent], force: bool = False) -> None:
    """Delete agents with their bindings (and, when forced, their sessions) by the rules of
    agents_delete_check, all or none."""
    agents_delete_check(agents=agents, force=force)
    for agent in agents:
        agent.delete()


def agent_delete(*, agent: Agent, force: bool = False) -> None:
    """Delete one agent (REST API, Control UI, admin): see agents_delete_check."""
    agents_delete(agents=[agent], force=force)


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


def bootstrap(config: dict[str, Any]) -> str:
    """On gateway start: import the config's agents (without overwriting) and make sure an
    agent exists. (Runs left behind by a process that is gone are ended by the run
    service's sweeper, which every gateway and worker starts with the process.)"""
    result = agents_import(config, update_existing=False)
    agent = ensure_default_agent()
    return f"agents: {result}; default agent {agent.id!r}"
