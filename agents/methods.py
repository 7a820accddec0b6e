"""Agent, chat and session methods on the gateway's method registry (every dialect)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from agents import selectors
from agents.routing import Route
from agents.services import runs
from agents.services import sessions as session_service
from agents.services.runs import RunRequest, RunTicket, session_topic
from gateway.protocol.agent import (
    AgentCancelParams,
    AgentParams,
    AgentWaitParams,
    ChatAbortParams,
    ChatHistoryParams,
    RunParams,
    SessionKeyParams,
    SessionsCreateParams,
    SessionsFolderParams,
    SessionsListParams,
    SessionsRenameParams,
)
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.system import NoParams
from gateway.rpc import CallContext, registry
from gateway.state import outage

db = database_sync_to_async


def run_request(params: RunParams, **fields: Any) -> RunRequest:
    """The run service's request for validated run params (WebSocket ``agent`` and REST);
    ``fields`` are the caller's own (``source``, ``requester``, a header's idempotency key)."""
    values: dict[str, Any] = {
        "message": params.message,
        "agent_id": params.agent_id,
        "session_key": params.session_key,
        "route": Route.from_wire(params.routing),
        "idempotency_key": params.idempotency_key,
        "queue": params.queue,
        "timeout": params.timeout,
        "extra_system_prompt": params.extra_system_prompt,
    }
    return RunRequest(**(values | fields))


@registry.method("agents.list")
async def agents_list(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """Every agent with its model and default flag."""
    return {"agents": await db(selectors.agent_list)()}


@registry.method("agent", AgentParams)
async def agent(ctx: CallContext, params: AgentParams) -> dict[str, Any]:
    """Ack now (``status: accepted``); the final result follows as a second reply."""

    async def subscribe(ticket: RunTicket) -> None:
        try:
            await ctx.join_topic(session_topic(ticket.session_key))
        except outage.ERRORS as exc:  # the accepted run still runs, and ends, without events
            outage.redis_state.failed(exc, "subscribing an agent call to its session")

    request = run_request(params, requester=ctx.conn_id, before_start=subscribe)
    ticket = await runs.run_start(request=request)
    ctx.bind(ticket.run_id)

    async def follow() -> None:
        if ticket.duplicate:  # a retry: follow the run it already started
            await subscribe(ticket)
        await runs.run_follow(ticket, ctx.send_followup)

    ctx.after_reply(follow)
    return ticket.ack()


@registry.method("agent.wait", AgentWaitParams)
async def agent_wait(ctx: CallContext, params: AgentWaitParams) -> dict[str, Any]:
    """Wait for a run to end: ``status`` ok | error | cancelled, or timeout."""
    timeout = (params.timeout_ms if params.timeout_ms is not None else 30_000) / 1000
    run = await runs.run_wait(params.run_id, timeout)
    if run is None:
        current = await runs.run_get(params.run_id)
        return {"runId": params.run_id, "status": "timeout", **_times(current)}
    final = runs.final_result(run)
    answer = {"runId": run.id, "status": final["status"], **_times(run)}
    if "error" in final:  # e.g. {code: "EXECUTOR_LOST", message: ...}
        answer["error"] = final["error"]
    return answer


def _times(run) -> dict[str, Any]:
    data = selectors.run_data(run) if hasattr(run, "session") else {}
    return {"startedAt": data.get("startedAt"), "endedAt": data.get("endedAt")}


@registry.method("agent.cancel", AgentCancelParams)
async def agent_cancel(ctx: CallContext, params: AgentCancelParams) -> dict[str, Any]:
    """Cancel a run (by ``runId``, or by the ``requestId`` that started it)."""
    run_id = params.run_id
    if run_id is None and params.request_id is not None:
        run_id = ctx.key_of_request(params.request_id)
    if run_id is None:
        raise GatewayError(ErrorCode.NOT_FOUND, "no such run")
    cancelled = await runs.run_cancel(run_id)
    return {"runId": run_id, "cancelled": cancelled, "requestId": params.request_id}


@registry.method("chat.abort", ChatAbortParams)
async def chat_abort(ctx: CallContext, params: ChatAbortParams) -> dict[str, Any]:
    """Cancel the session's queued and running runs (or just ``runId``)."""
    ids = [params.run_id] if params.run_id else await db(_open_runs)(params.session_key)
    aborted = [run_id for run_id in ids if await runs.run_cancel(run_id)]
    return {"sessionKey": params.session_key, "aborted": aborted}


def _open_runs(key: str) -> list[str]:
    from agents.models import Run, RunStatus

    return list(
        Run.objects.filter(session__key=key, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .order_by("-created_at")
        .values_list("id", flat=True)
    )


@registry.method("chat.history", ChatHistoryParams)
async def chat_history(ctx: CallContext, params: ChatHistoryParams) -> dict[str, Any]:
    """The session's messages, oldest first (the last ``limit``)."""
    await db(session_service.session_get)(params.session_key)
    messages = await db(selectors.chat_history)(key=params.session_key, limit=params.limit)
    return {"sessionKey": params.session_key, "messages": messages}


@registry.method("sessions.list", SessionsListParams)
async def sessions_list(ctx: CallContext, params: SessionsListParams) -> dict[str, Any]:
    """Sessions, newest first."""
    return {
        "sessions": await db(selectors.session_list)(agent_id=params.agent_id, limit=params.limit)
    }


@registry.method("sessions.create", SessionsCreateParams)
async def sessions_create(ctx: CallContext, params: SessionsCreateParams) -> dict[str, Any]:
    """A new named session with an agent (default agent when none is given)."""
    return await db(_create)(params)


def _create(params: SessionsCreateParams) -> dict[str, Any]:
    if params.agent_id:
        agent = session_service.agent_get(params.agent_id)
    else:
        agent = session_service.agent_default()
    session = session_service.session_create(agent=agent, name=params.name or "")
    if params.working_folder:
        session = session_service.session_set_folder(key=session.key, folder=params.working_folder)
    return selectors.session_data(session)


@registry.method("sessions.get", SessionKeyParams)
async def sessions_get(ctx: CallContext, params: SessionKeyParams) -> dict[str, Any]:
    session = await db(session_service.session_get)(params.session_key)
    return selectors.session_data(session)


@registry.method("sessions.rename", SessionsRenameParams)
async def sessions_rename(ctx: CallContext, params: SessionsRenameParams) -> dict[str, Any]:
    session = await db(session_service.session_rename)(key=params.session_key, name=params.name)
    return selectors.session_data(session)


@registry.method("sessions.setFolder", SessionsFolderParams)
async def sessions_set_folder(ctx: CallContext, params: SessionsFolderParams) -> dict[str, Any]:
    """Set the session's working folder (validated against ``gateway.fsRoots``; "" clears)."""
    session = await db(session_service.session_set_folder)(
        key=params.session_key, folder=params.working_folder
    )
    return selectors.session_data(session)


@registry.method("sessions.delete", SessionKeyParams)
async def sessions_delete(ctx: CallContext, params: SessionKeyParams) -> dict[str, Any]:
    await db(session_service.session_delete)(key=params.session_key)
    return {"sessionKey": params.session_key, "deleted": True}


@registry.method("sessions.subscribe", SessionKeyParams)
async def sessions_subscribe(ctx: CallContext, params: SessionKeyParams) -> dict[str, Any]:
    """Receive the session's ``agent`` and ``session.message`` events."""
    await db(session_service.session_get)(params.session_key)
    await ctx.join_topic(session_topic(params.session_key))
    return {"sessionKey": params.session_key, "subscribed": True}


@registry.method("sessions.unsubscribe", SessionKeyParams)
async def sessions_unsubscribe(ctx: CallContext, params: SessionKeyParams) -> dict[str, Any]:
    await ctx.leave_topic(session_topic(params.session_key))
    return {"sessionKey": params.session_key, "subscribed": False}
