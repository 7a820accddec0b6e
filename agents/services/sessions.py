"""Session writes: create, rename, delete, working folder."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from agents.models import Agent, Session
from agents.routing import Route, agent_of_session_key, default_agent, session_key
from gateway.protocol.errors import ErrorCode, GatewayError


def _not_found(what: str) -> GatewayError:
    return GatewayError(ErrorCode.NOT_FOUND, what)


def agent_get(agent_id: str) -> Agent:
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise _not_found(f"no agent {agent_id!r}")
    if not agent.enabled:
        raise GatewayError(ErrorCode.FORBIDDEN, f"agent {agent_id!r} is disabled")
    return agent


def agent_default() -> Agent:
    """The default enabled agent (``default: true``, else the first), or NOT_FOUND."""
    agent = default_agent(Agent.objects.filter(enabled=True))
    if agent is None:
        raise _not_found("no enabled agent: create an agent or enable one")
    return agent


def session_get(key: str) -> Session:
    session = Session.objects.select_related("agent").filter(key=key).first()
    if session is None:
        raise _not_found(f"no session {key!r}")
    return session


def session_for(*, agent: Agent, key: str, route: Route | None = None) -> Session:
    """The session with ``key``, created (with its channel identity) when new."""
    peer = route.peer if route else None
    defaults = {
        "agent": agent,
        "channel": route.channel if route else "",
        "account_id": route.account_id if route else "",
        "peer_kind": peer.kind if peer else "",
        "peer_id": peer.id if peer else "",
        "thread_id": route.thread_id if route else "",
    }
    try:
        with transaction.atomic():
            session, _ = Session.objects.select_related("agent").get_or_create(
                key=key, defaults=defaults
            )
    except IntegrityError:  # created concurrently
        session = Session.objects.select_related("agent").get(key=key)
    return session


def session_create(*, agent: Agent, name: str = "") -> Session:
    """A new, separate conversation with ``agent`` (its own key)."""
    key = f"agent:{agent.id}:session:{uuid.uuid4().hex[:12]}"
    return Session.objects.create(key=key, agent=agent, name=name.strip()[:200])


def session_rename(*, key: str, name: str) -> Session:
    session = session_get(key)
    session.name = name.strip()[:200]
    session.save(update_fields=["name", "updated_at"])
    return session


def session_delete(*, key: str) -> None:
    deleted, _ = Session.objects.filter(key=key).delete()
    if not deleted:
        raise _not_found(f"no session {key!r}")


@transaction.atomic
def session_update(*, key: str, name: str | None = None, folder: str | None = None) -> Session:
    """Rename and/or set the working folder ("" clears it); bad input changes nothing."""
    session = session_get(key)
    fields = ["updated_at"]
    if folder is not None:
        session.working_folder = str(validate_folder(folder)) if folder else ""
        fields.append("working_folder")
    if name is not None:
        session.name = name.strip()[:200]
        fields.append("name")
    session.save(update_fields=fields)
    return session


def fs_roots() -> list[Path]:
    return [p.expanduser().resolve() for p in settings.WINGMAN.fs_roots]


def validate_folder(folder: str) -> Path:
    """An absolute folder inside one of ``gateway.fsRoots``; raises INVALID_REQUEST."""
    path = Path(folder).expanduser()
    if not path.is_absolute():
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"working folder must be absolute: {folder}")
    resolved = path.resolve()
    roots = fs_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise GatewayError(
            ErrorCode.FORBIDDEN,
            f"{resolved} is outside the allowed folders (gateway.fsRoots: {allowed})",
        )
    return resolved


def session_set_folder(*, key: str, folder: str) -> Session:
    session = session_get(key)
    session.working_folder = str(validate_folder(folder)) if folder else ""
    session.save(update_fields=["working_folder", "updated_at"])
    return session


def working_folder(session: Session) -> Path:
    """Where the agent's file tools work: the session's folder or outputs/<agentId>/."""
    if session.working_folder:
        path = Path(session.working_folder)
    else:
        path = settings.WINGMAN.state_dir / "outputs" / session.agent_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_key_agent(key: str, agent_id: str | None) -> str:
    """The agent a session key belongs to; an explicit different ``agent_id`` is an error."""
    owner = agent_of_session_key(key)
    if owner is None:
        raise GatewayError(
            ErrorCode.INVALID_REQUEST, f"invalid session key {key!r} (agent:<id>:...)"
        )
    if agent_id and agent_id != owner:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"agentId {agent_id!r} contradicts sessionKey {key!r} (agent {owner!r})",
        )
    return owner


__all__ = ["Route", "session_key"]
