"""Reads: agents, sessions, history, as plain data for the protocol and the API."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from agents.models import Agent, Message, MessageRole, Run, RunStatus, Session


def _ms(dt) -> int | None:
    return int(dt.timestamp() * 1000) if dt else None


def agents_with_counts() -> QuerySet[Agent]:
    """Agents annotated with ``binding_count`` and ``session_count`` (lists, admin)."""
    return Agent.objects.annotate(
        binding_count=Count("bindings", distinct=True),
        session_count=Count("sessions", distinct=True),
    )


def stored_counts() -> dict[str, Any]:
    """How much is stored: agents, sessions, messages, and runs by status."""
    runs = dict(Run.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "agents": Agent.objects.count(),
        "sessions": Session.objects.count(),
        "messages": Message.objects.count(),
        "runs": runs,
    }


def agent_data(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "name": agent.name or agent.id,
        "model": agent.model or None,
        "default": agent.is_default,
        "enabled": agent.enabled,
        "tools": agent.tools,
    }


def agent_list() -> list[dict[str, Any]]:
    return [agent_data(a) for a in Agent.objects.all()]


def session_data(session: Session) -> dict[str, Any]:
    return {
        "sessionKey": session.key,
        "agentId": session.agent_id,
        "name": session.name or None,
        "channel": session.channel or None,
        "workingFolder": session.working_folder or None,
        "messageCount": session.message_count,
        "lastPreview": session.last_preview or None,
        "createdAt": _ms(session.created_at),
        "updatedAt": _ms(session.updated_at),
    }


def session_list(*, agent_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    qs = Session.objects.all()
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    return [session_data(s) for s in qs.order_by("-updated_at")[:limit]]


def message_data(message: Message) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "runId": message.run_id,
        "position": message.position,
        "createdAt": _ms(message.created_at),
    }


def chat_history(*, key: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = list(Message.objects.filter(session__key=key).order_by("-position")[:limit])
    return [message_data(m) for m in reversed(rows)]


def model_history(
    session_id: int, *, before: int, limit: int, run_id: str | None = None
) -> list[tuple[str, str]]:
    """The last ``limit`` user/assistant turns the model should see before a prompt.

    With ``run_id``: every message of the session except that run's own and those of runs
    still waiting or running (a queued run's answer lands after later prompts were
    accepted, so position alone would hide the answer just before this prompt).
    Without it: the messages before ``position``.
    """
    rows = Message.objects.filter(
        session_id=session_id, role__in=[MessageRole.USER, MessageRole.ASSISTANT]
    ).exclude(content="")
    if run_id is None:
        rows = rows.filter(position__lt=before)
    else:
        rows = rows.exclude(run_id=run_id).exclude(
            run__status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        )
    picked = rows.order_by("-position").values_list("role", "content")[:limit]
    return list(reversed(list(picked)))


def run_data(run: Run) -> dict[str, Any]:
    return {
        "runId": run.id,
        "status": run.status,
        "sessionKey": run.session.key,
        "agentId": run.session.agent_id,
        "source": run.source,
        "prompt": run.prompt,
        "result": run.result,
        "error": run.error or None,
        "createdAt": _ms(run.created_at),
        "startedAt": _ms(run.started_at),
        "endedAt": _ms(run.ended_at),
    }


# REST API lists (querysets: the API paginates them) --------------------------------------
def session_queryset(
    *, agent_id: str | None = None, channel: str | None = None, search: str | None = None
):
    """Sessions, newest activity first, filtered by agent, channel and name/key text."""
    from django.db.models import Q

    qs = Session.objects.all()
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    if channel:
        qs = qs.filter(channel=channel)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(key__icontains=search))
    return qs.order_by("-updated_at", "-id")


def message_queryset(*, session: Session):
    """A session's messages, oldest first."""
    return Message.objects.filter(session=session).order_by("position")


def run_queryset(
    *, status: str | None = None, session_key: str | None = None, agent_id: str | None = None
):
    """Runs, newest first, filtered by status, session key and agent."""
    qs = Run.objects.select_related("session")
    if status:
        qs = qs.filter(status=status)
    if session_key:
        qs = qs.filter(session__key=session_key)
    if agent_id:
        qs = qs.filter(session__agent_id=agent_id)
    return qs.order_by("-created_at", "-id")


def result_payload(text: str) -> dict[str, Any]:
    """A finished answer as protocol ``result``: ``{text, payloads}``."""
    return {"text": text, "payloads": [{"text": text}] if text else []}


def terminal_step(*, status: str, text: str, error: str, code: str | None) -> dict[str, Any]:
    """The fields of a run's one terminal ``agent`` event for its final status."""
    if status == RunStatus.OK:
        return {"type": "agent-complete", "result": result_payload(text)}
    if status == RunStatus.CANCELLED:
        return {"type": "agent-cancelled", "partialText": text}
    return {"type": "agent-error", "error": error, "code": str(code or "AGENT_ERROR")}


def run_start_event(run: Run) -> dict[str, Any]:
    """A started run's ``agent-start`` event (``seq`` 1), rebuilt from the database, marked
    ``replay``."""
    return {
        "runId": run.id,
        "sessionKey": run.session.key,
        "agentId": run.session.agent_id,
        "seq": 1,
        "timestamp": _ms(run.started_at),
        "type": "agent-start",
        "agent": run.session.agent_id,
        "prompt": run.prompt,
        "replay": True,
    }


def run_error_code(run: Run) -> str:
    """The protocol code of a failed run (``AGENT_ERROR`` unless it says otherwise:
    ``AGENT_TIMEOUT``, ``EXECUTOR_LOST``)."""
    if run.error_code:
        return run.error_code
    return "AGENT_TIMEOUT" if run.status == RunStatus.TIMEOUT else "AGENT_ERROR"


def run_terminal_event(run: Run) -> dict[str, Any]:
    """A finished run's terminal ``agent`` event, rebuilt from the database (the run service
    publishes the same through ``terminal_step``), without ``seq``."""
    code = run_error_code(run)
    return {
        "runId": run.id,
        "sessionKey": run.session.key,
        "agentId": run.session.agent_id,
        "timestamp": _ms(run.ended_at),
        **terminal_step(status=run.status, text=run.result, error=run.error, code=code),
    }
