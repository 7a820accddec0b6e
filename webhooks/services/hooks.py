"""OpenClaw-compatible hooks, for integrations written for OpenClaw: ``POST /hooks/agent``
(an agent run) and ``POST /hooks/wake`` (a line to the agent's main session), answered as
OpenClaw answers: ``{ok: true, runId}`` (202 agent, 200 wake) or ``{ok: false, error}``
(400 bad request or a token in the query string, 401 token, 409 conflict, 413 too large).

Off (404) unless a hooks token is configured (``WINGMAN_HOOKS_TOKEN`` or ``hooks.token`` in
wingman.config.json). The token comes in ``Authorization: Bearer`` or ``x-openclaw-token``,
never in the query string. Runs start through the one run entry point.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings

from agents.models import RunSource, Session
from agents.services.runs import RunRequest, RunTicket, run_start
from agents.services.sessions import agent_default
from gateway.protocol.dialects.base import loads
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.state.db import db_call
from webhooks.services.deliveries import Answer

#: GatewayError codes → the HTTP status OpenClaw uses for them.
_STATUS = {ErrorCode.CONFLICT: 409, ErrorCode.NOT_FOUND: 400, ErrorCode.FORBIDDEN: 400}


def _fail(status: int, error: str) -> Answer:
    return Answer(status, {"ok": False, "error": error})


def hooks_enabled() -> bool:
    return bool(settings.WINGMAN_HOOKS_TOKEN)


def _refusal(method: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes):
    """The answer to a request that must not go further, else None."""
    if not hooks_enabled():
        return _fail(404, "hooks are disabled (set WINGMAN_HOOKS_TOKEN)")
    if method != "POST":
        return Answer(405, {"ok": False, "error": "Method Not Allowed"}, {"Allow": "POST"})
    if "token" in query:
        return _fail(400, "hook token must be sent in a header, not the query string")
    authorization = headers.get("Authorization", "")
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    token = token or headers.get("x-openclaw-token", "").strip()
    expected = settings.WINGMAN_HOOKS_TOKEN.encode()
    if not token or not hmac.compare_digest(token.encode(), expected):
        return _fail(401, "Unauthorized")
    if len(body) > settings.WINGMAN_WEBHOOK_MAX_BODY_BYTES:
        return _fail(413, "Payload Too Large")
    return None


def _json(body: bytes) -> dict[str, Any] | Answer:
    try:
        data = loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return _fail(400, "invalid JSON body")
    return data if isinstance(data, dict) else _fail(400, "body must be a JSON object")


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _session_key(agent_id: str, key: str | None) -> str:
    """OpenClaw's session keys (``hook:email:1``) inside the agent's namespace; ours
    (``agent:...``) as-is; none: a new one."""
    if key is None:
        return f"agent:{agent_id}:hook:{uuid.uuid4().hex}"
    return key if key.startswith("agent:") else f"agent:{agent_id}:hook:{key}"


async def _start(request: RunRequest) -> RunTicket | Answer:
    try:
        return await run_start(request=request)
    except GatewayError as error:
        return _fail(_STATUS.get(error.code, 400), error.message)


def _agent_request(data: dict[str, Any], headers: Mapping[str, str]) -> RunRequest | Answer:
    message = _text(data, "message")
    if message is None:
        return _fail(400, "message required")
    agent_id = _text(data, "agentId")
    key = _text(data, "sessionKey")
    timeout = data.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        return _fail(400, "timeoutSeconds must be a positive number")
    idempotency = _text(data, "idempotencyKey") or headers.get("Idempotency-Key", "").strip()
    return RunRequest(
        message=message,
        source=RunSource.WEBHOOK,
        agent_id=agent_id,
        session_key=_session_key(agent_id or _default_agent_id(), key),
        idempotency_key=f"hooks:{idempotency}"[:200] if idempotency else None,
        timeout=float(timeout) if timeout else None,
        requester="hooks:agent",
    )


def _default_agent_id() -> str:
    try:
        return agent_default().id
    except GatewayError:
        return "main"


def _name_session(key: str, name: str) -> None:
    Session.objects.filter(key=key, name="").update(name=f"Hook: {name}"[:200])


async def hook_agent(
    *, method: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> Answer:
    """``POST /hooks/agent {message, name?, agentId?, sessionKey?, idempotencyKey?,
    timeoutSeconds?}`` → 202 ``{ok: true, runId}`` (a retried idempotency key: 200, the
    same run)."""
    if refused := _refusal(method, headers, query, body):
        return refused
    data = _json(body)
    if isinstance(data, Answer):
        return data
    request = await db_call(_agent_request)(data, headers)
    if isinstance(request, Answer):
        return request
    ticket = await _start(request)
    if isinstance(ticket, Answer):
        return ticket
    if name := _text(data, "name"):
        await db_call(_name_session)(ticket.session_key, name)
    status = 200 if ticket.duplicate else 202
    return Answer(status, {"ok": True, "runId": ticket.run_id, "sessionKey": ticket.session_key})


async def hook_wake(
    *, method: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
) -> Answer:
    """``POST /hooks/wake {text, mode?, agentId?}`` → 200 ``{ok: true, mode, runId}``: the
    text as a system line to the agent's main session, answered now (this gateway has no
    heartbeat to wait for, so ``next-heartbeat`` runs now too)."""
    if refused := _refusal(method, headers, query, body):
        return refused
    data = _json(body)
    if isinstance(data, Answer):
        return data
    text = _text(data, "text")
    if text is None:
        return _fail(400, "text required")
    mode = data.get("mode") or "now"
    if mode not in ("now", "next-heartbeat"):
        return _fail(400, "mode must be now or next-heartbeat")
    request = RunRequest(
        message=f"System event (hook): {text}",
        source=RunSource.WEBHOOK,
        agent_id=_text(data, "agentId"),
        requester="hooks:wake",
    )
    ticket = await _start(request)
    if isinstance(ticket, Answer):
        return ticket
    return Answer(200, {"ok": True, "mode": mode, "runId": ticket.run_id})
