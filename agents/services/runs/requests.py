"""What a caller asks for (:class:`RunRequest`), what it gets back (:class:`RunTicket`), and
what an executor needs to run it (:class:`RunPlan`, loadable from the run id alone)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import selectors
from agents.models import Message, MessageRole, Run, RunSource, RunStatus
from agents.routing import Route
from agents.services import sessions as session_service

#: Seconds before a run ends with AGENT_TIMEOUT (``WINGMAN_RUN_TIMEOUT``), unless the request
#: says otherwise.
DEFAULT_TIMEOUT_SECONDS = float(os.environ.get("WINGMAN_RUN_TIMEOUT", "600"))
#: Messages of history given to the model (``WINGMAN_HISTORY_LIMIT``).
HISTORY_LIMIT = int(os.environ.get("WINGMAN_HISTORY_LIMIT", "50"))

Observer = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class RunRequest:
    """What a caller asks for; see ``design/protocol.md`` ``agent`` params."""

    message: str
    source: str = RunSource.WS
    agent_id: str | None = None
    session_key: str | None = None
    route: Route | None = None
    idempotency_key: str | None = None
    queue: bool = True
    timeout: float | None = None
    extra_system_prompt: str | None = None
    #: The connection that asked (it is not sent its own message as ``session.message``).
    requester: str | None = None
    #: Also called with every step event. In-process callers only (``wingman agent
    #: --local``): such a run always executes in the caller's process.
    observer: Observer | None = None
    #: Awaited once the run is accepted, before it can start (e.g. subscribe the caller to
    #: the session's events, so it misses none).
    before_start: Callable[[RunTicket], Awaitable[None]] | None = None
    #: The session's name when it has none yet (set in the accept transaction).
    session_name: str | None = None
    #: Sync, called with the new run inside the transaction that persists it (on the
    #: database thread; not for a duplicate): the caller's own rows that must commit with
    #: the run and its user message, or not at all (a routine's fire record, a webhook's
    #: delivery log line), with no transaction of its own.
    on_accept: Callable[[Run], None] | None = None


@dataclass
class RunTicket:
    """The accepted run (or the existing one, for a retried idempotency key)."""

    run_id: str
    session_key: str
    agent_id: str
    status: str
    accepted_at: int
    position: int = 0
    duplicate: bool = False
    final: dict[str, Any] | None = None

    @classmethod
    def of(cls, run: Run, *, duplicate: bool, position: int = 0) -> RunTicket:
        return cls(
            run_id=run.id,
            session_key=run.session.key,
            agent_id=run.session.agent_id,
            status=run.status,
            accepted_at=int(run.created_at.timestamp() * 1000),
            position=position,
            duplicate=duplicate,
            final=final_result(run) if run.finished else None,
        )

    def ack(self) -> dict[str, Any]:
        """The first ``res`` of ``agent``."""
        ack = {
            "runId": self.run_id,
            "status": "accepted",
            "acceptedAt": self.accepted_at,
            "sessionKey": self.session_key,
            "agentId": self.agent_id,
        }
        if self.position:
            ack["queuePosition"] = self.position
        if self.duplicate:
            ack["duplicate"] = True
        return ack


@dataclass(frozen=True)
class RunPlan:
    """Everything an executor needs to run an accepted run, in any process."""

    run_id: str
    session_key: str
    session_id: int
    agent_id: str
    prompt: str
    model: str
    system_prompt: str
    tools: tuple[str, ...]
    #: Position of the run's user message: the model sees the history before it.
    position: int
    working_folder: Path
    timeout: float
    extra_system_prompt: str | None
    #: Started when accepted (``accept``): its executor does not ask for the turn.
    started: bool = False

    @classmethod
    def of(cls, run: Run, position: int) -> RunPlan:
        session, agent = run.session, run.session.agent
        return cls(
            run_id=run.id,
            session_key=session.key,
            session_id=session.pk,
            agent_id=agent.id,
            prompt=run.prompt,
            model=agent.model,
            system_prompt=agent.system_prompt,
            tools=tuple(agent.tools or ()),
            position=position,
            working_folder=session_service.working_folder(session),
            timeout=run.timeout or DEFAULT_TIMEOUT_SECONDS,
            extra_system_prompt=run.extra_system_prompt or None,
            started=run.status == RunStatus.RUNNING,
        )

    @classmethod
    def load(cls, run_id: str) -> RunPlan:
        """The plan of an accepted run, from the database (a worker has only the id)."""
        run = Run.objects.select_related("session__agent").get(pk=run_id)
        position = (
            Message.objects.filter(run=run, role=MessageRole.USER)
            .values_list("position", flat=True)
            .first()
        )
        return cls.of(run, position if position is not None else run.session.message_count)

    def ticket(self) -> RunTicket:
        """A ticket for events and answers (the plan's run as the run service sees it)."""
        return RunTicket(self.run_id, self.session_key, self.agent_id, RunStatus.QUEUED, 0)


def final_result(run: Run) -> dict[str, Any]:
    """The second ``res`` of ``agent``: ``{runId, status, summary, result}``."""
    status = {RunStatus.OK: "ok", RunStatus.CANCELLED: "cancelled"}.get(run.status, "error")
    out: dict[str, Any] = {
        "runId": run.id,
        "status": status,
        "summary": "completed" if status == "ok" else run.error or status,
        "result": selectors.result_payload(run.result),
    }
    if status == "error":
        out["error"] = {"code": selectors.run_error_code(run), "message": run.error}
    return out
