"""Accepting a run: route it to a session, and persist the run and its user message in one
transaction (or find the run a retried idempotency key already started).

Idempotency keys are unique per source in the database, so a retry never starts a second
run, across reconnects and across gateway processes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
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


def _take_position(session: Session, preview: str) -> int:
    """Count one more message on the session and return the new message's position: ONE
    statement, ``UPDATE ... RETURNING`` (it locks the session row until the transaction
    ends, as ``SELECT ... FOR UPDATE`` did before it, one statement sooner). Older SQLite
    (before 3.35) has no RETURNING: a locked read, then the update."""
    now = timezone.now()
    if connection.vendor == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        locked = Session.objects.select_for_update().filter(pk=session.pk)
        position = locked.values_list("message_count", flat=True).get()
        locked.update(message_count=F("message_count") + 1, last_preview=preview, updated_at=now)
        return position
    qn, field = connection.ops.quote_name, Session._meta.get_field
    count = qn(field("message_count").column)
    # (identifiers from the model, quoted; every value is a parameter)
    table, preview_column = qn(Session._meta.db_table), qn(field("last_preview").column)
    updated, pk = qn(field("updated_at").column), qn(field("id").column)
    sql = f"UPDATE {table} SET {count} = {count} + 1, {preview_column} = %s, {updated} = %s"  # noqa: S608
    sql += f" WHERE {pk} = %s RETURNING {count}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [preview, connection.ops.adapt_datetimefield_value(now), session.pk])
        row = cursor.fetchone()
    if row is None:
        raise Session.DoesNotExist(f"session {session.pk} is gone")
    return row[0] - 1


def append_message(session: Session, role: str, content: str, run: Run | None) -> Message:
    """Add a message at the end of the session (called inside a transaction)."""
    position = _take_position(session, content[:200])
    return Message.objects.create(
        session=session, role=role, content=content, run=run, position=position
    )


def _persist(
    req: RunRequest, session: Session, executor: str, owner: Owner | None
) -> tuple[Run, int, int]:
    """In the caller's transaction: the user message's position (locking the session row),
    the open runs ahead, the run (started now when local and nothing is ahead) and its
    message. Returns the run, the message's position and how many runs are ahead."""
    position = _take_position(session, req.message[:200])
    ahead = _ahead(session)
    if ahead and not req.queue:  # (raised in the transaction: it rolls back)
        raise GatewayError(
            ErrorCode.CONFLICT,
            f"session {session.key} is busy ({ahead} run(s) ahead) and queueing was refused",
            retryable=True,
        )
    now = timezone.now()
    start = owner is not None and not ahead
    run = Run.objects.create(
        session=session,
        source=req.source,
        prompt=req.message,
        idempotency_key=req.idempotency_key or None,
        timeout=req.timeout,
        extra_system_prompt=req.extra_system_prompt or "",
        executor=executor,
        status=RunStatus.RUNNING if start else RunStatus.QUEUED,
        started_at=now if start else None,
        **(owner.fields() if owner else {"heartbeat_at": now}),
    )
    Message.objects.create(
        session=session, role=MessageRole.USER, content=req.message, run=run, position=position
    )
    return run, position, ahead


def accept(
    req: RunRequest, *, executor: str, owner: Owner | None
) -> tuple[RunTicket, RunPlan | None]:
    """Route, then persist the run and the user message (one transaction). ``owner`` is the
    executing process when known now (local runs); a Celery run gets its owner when a worker
    claims it. The plan is None for a duplicate.

    A local run of a session with no open run starts at once: it is written ``running``
    (``started_at`` now) in this transaction, decided under the session row's lock that the
    message position takes first, so its executor does not ask for the turn (six statements
    and a database call fewer per run). Every other run is written ``queued`` and waits for
    its turn (``execute._wait_turn``)."""
    if not req.queue:  # a retry of a run still going must not be refused as busy
        existing = _existing(req.source, req.idempotency_key)
        if existing is not None:
            return RunTicket.of(existing, duplicate=True), None
    # Otherwise a retried key is told by the unique constraint (below), not a read first.
    session = _resolve_session(req)
    try:
        with transaction.atomic():
            run, position, ahead = _persist(req, session, executor, owner)
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
    return RunTicket.of(run, duplicate=False, position=ahead), RunPlan.of(run, position)
