"""Accepting a run: route it to a session, and persist the run and its user message in one
transaction (or find the run a retried idempotency key already started).

Idempotency keys are unique per source in the database, so a retry never starts a second
run, across reconnects and across gateway processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents.models import Binding, Message, MessageRole, Run, RunStatus, Session
from agents.routing import Route, match_binding, session_key
from agents.services import sessions as session_service
from agents.services.runs.requests import RunPlan, RunRequest, RunTicket
from gateway.protocol.errors import ErrorCode, GatewayError

OPEN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True)
class Owner:
    """The process that executes a run: its seat id (control messages reach it), host and
    pid (a run whose process is gone is lost, ``liveness.py``)."""

    seat_id: str
    host: str
    pid: int

    def fields(self) -> dict:
        return {
            "owner": self.seat_id,
            "owner_host": self.host,
            "owner_pid": self.pid,
            "heartbeat_at": timezone.now(),
        }


def _existing(source: str, key: str | None) -> Run | None:
    if not key:
        return None
    return Run.objects.select_related("session").filter(source=source, idempotency_key=key).first()


def _resolve_session(req: RunRequest) -> Session:
    if req.session_key:
        owner = session_service.check_key_agent(req.session_key, req.agent_id)
        existing = Session.objects.select_related("agent").filter(key=req.session_key).first()
        if existing is not None:
            return existing
        agent = session_service.agent_get(owner)
        return session_service.session_for(agent=agent, key=req.session_key, route=req.route)
    agent = session_service.agent_get(req.agent_id) if req.agent_id else _route_agent(req.route)
    return session_service.session_for(
        agent=agent, key=session_key(agent.id, req.route), route=req.route
    )


def _route_agent(route: Route | None):
    if route is not None and route.channel:
        binding = match_binding(
            Binding.objects.filter(agent__enabled=True).select_related("agent"), route
        )
        if binding is not None:
            return binding.agent
    return session_service.agent_default()


def _ahead(session: Session) -> int:
    return Run.objects.filter(session=session, status__in=OPEN_STATUSES).count()


def append_message(session: Session, role: str, content: str, run: Run | None) -> Message:
    """Add a message at the end of the session (called inside a transaction)."""
    locked = Session.objects.select_for_update().filter(pk=session.pk)
    position = locked.values_list("message_count", flat=True).get()
    message = Message.objects.create(
        session=session, role=role, content=content, run=run, position=position
    )
    Session.objects.filter(pk=session.pk).update(
        message_count=F("message_count") + 1,
        last_preview=content[:200],
        updated_at=timezone.now(),
    )
    return message


def accept(
    req: RunRequest, *, executor: str, owner: Owner | None
) -> tuple[RunTicket, RunPlan | None]:
    """Route, then persist the run and the user message (one transaction). ``owner`` is the
    executing process when known now (local runs); a Celery run gets its owner when a worker
    claims it. The plan is None for a duplicate."""
    existing = _existing(req.source, req.idempotency_key)
    if existing is not None:
        return RunTicket.of(existing, duplicate=True), None
    session = _resolve_session(req)
    ahead = _ahead(session)
    if ahead and not req.queue:
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"session {session.key} is busy ({ahead} run(s) ahead) and queueing was refused",
            retryable=True,
        )
    try:
        with transaction.atomic():
            run = Run.objects.create(
                session=session,
                source=req.source,
                prompt=req.message,
                idempotency_key=req.idempotency_key or None,
                timeout=req.timeout,
                extra_system_prompt=req.extra_system_prompt or "",
                executor=executor,
                **(owner.fields() if owner else {"heartbeat_at": timezone.now()}),
            )
            user_message = append_message(session, MessageRole.USER, req.message, run)
            if req.session_name and not session.name:
                Session.objects.filter(pk=session.pk, name="").update(name=req.session_name)
            if req.on_accept is not None:
                run.session = session
                req.on_accept(run)
    except IntegrityError:
        existing = _existing(req.source, req.idempotency_key)
        if existing is None:
            raise
        return RunTicket.of(existing, duplicate=True), None
    run.session = session
    return RunTicket.of(run, duplicate=False, position=ahead), RunPlan.of(
        run, user_message.position
    )
