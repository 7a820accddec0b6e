"""Inbound deliveries: ``POST /webhooks/<id>`` checked in the issue's order, the run it
starts, the delivery log, the ``webhook`` event.

Order (the first failing check answers): 405 other methods · 404 unknown · 403 disabled ·
401 missing/wrong secret or bad signature · 403 address not allowed · 413 body too large ·
400 malformed or too deeply nested JSON · (200 a replayed delivery id: the original run) ·
429 over the webhook's rate limit (``Retry-After``) · 202 ``{ok, runId, sessionKey,
deliveryId}``.

Nothing but the delivery log line is written on any refusal (no run, message or session).
Accepted deliveries are never lost: ``run_start`` commits the run and its user message
before this answers 202 and then executes it (this process's loop, or a Celery worker); if
the process dies before the run ends, ``agents/services/runs/liveness.py`` ends it
``EXECUTOR_LOST`` (a local run) or dispatches it again (an unclaimed Celery run) — the
sweep every gateway and worker runs from startup. Unknown webhooks (404) are not logged:
there is nothing to log them against, and strangers must not be able to fill the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from agents.models import Run, RunSource
from agents.services.runs import RunRequest, RunTicket, run_start
from gateway.delivery import publish
from gateway.protocol import events
from gateway.protocol.errors import GatewayError
from gateway.state import cache as shared
from gateway.state.db import db_call
from webhooks import inbound, prompts, secrets
from webhooks.models import Delivery, Webhook

MAX_DELIVERY_ID = 200


@dataclass(frozen=True)
class Inbound:
    """One HTTP request to ``/webhooks/<id>``, as the view read it."""

    webhook_id: str
    method: str
    headers: Mapping[str, str]  # case-insensitive (Django's ``request.headers``)
    query: Mapping[str, str]
    body: bytes
    remote_addr: str


@dataclass
class Answer:
    """The HTTP answer: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Line:
    """The delivery log line being written for this request."""

    webhook: Webhook
    source_ip: str
    body_size: int
    delivery_id: str = ""
    signed: bool = False


def _refusal(status: int, reason: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"ok": False, "error": reason}, headers or {})


def _row(line: _Line, answer: Answer, **fields: Any) -> Delivery:
    reason = fields.pop("reason", "")
    return Delivery(
        webhook=line.webhook,
        source_ip=line.source_ip[:64],
        delivery_id=line.delivery_id[:MAX_DELIVERY_ID],
        status=answer.status,
        reason=str(answer.body.get("error") or reason)[:300],
        body_size=line.body_size,
        signed=line.signed,
        **fields,
    )


def _record(line: _Line, answer: Answer, **fields: Any) -> Delivery:
    delivery = _row(line, answer, **fields)
    delivery.save(force_insert=True)
    return delivery


def _insert_refusals(rows: list[Delivery]) -> None:
    """Insert refusals' log lines; keep the newest ``WINGMAN_WEBHOOK_REFUSALS_KEPT`` refused
    lines per webhook (a flood must not fill the database; accepted lines are all kept)."""
    Delivery.objects.bulk_create(rows)
    keep = settings.WINGMAN_WEBHOOK_REFUSALS_KEPT
    for webhook_id in {row.webhook_id for row in rows}:
        refused = Delivery.objects.filter(webhook_id=webhook_id).exclude(status__in=(200, 202))
        oldest_kept = refused.order_by("-id").values_list("id", flat=True)[keep : keep + 1]
        if oldest_kept:
            refused.filter(id__lte=oldest_kept[0]).delete()


class _RefusalLog:
    """Refusals' log lines, written in batches (group commit): a line waits for the write
    in progress, then goes with every line that arrived meanwhile in one insert. A flood of
    refused deliveries costs one database round trip per batch, not per request."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.batch: list[Delivery] = []
        self.written: asyncio.Future | None = None
        self.writer: asyncio.Task | None = None

    async def add(self, delivery: Delivery) -> None:
        if self.written is None:
            self.written = self.loop.create_future()
        self.batch.append(delivery)
        written = self.written
        if self.writer is None or self.writer.done():
            self.writer = self.loop.create_task(self._write())
        await asyncio.shield(written)

    async def _write(self) -> None:
        while self.batch:
            rows, written = self.batch, self.written
            self.batch, self.written = [], None
            try:
                await db_call(_insert_refusals)(rows)
            except Exception as exc:
                written.set_exception(exc)
            else:
                written.set_result(None)


_refusals: _RefusalLog | None = None


async def _refuse(line: _Line, answer: Answer) -> Answer:
    """Log a refused delivery (its only side effect) and answer it."""
    global _refusals
    loop = asyncio.get_running_loop()
    if _refusals is None or _refusals.loop is not loop:
        _refusals = _RefusalLog(loop)
    await _refusals.add(_row(line, answer))
    return answer


def _load(webhook_id: str) -> Webhook | None:
    return Webhook.objects.select_related("agent").filter(pk=webhook_id).first()


def _valid_hashes(webhook: Webhook) -> list[str]:
    hashes = [webhook.secret_hash]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret_hash and expires and expires > timezone.now():
        hashes.append(webhook.previous_secret_hash)
    return hashes


def _signing_secrets(webhook: Webhook) -> list[str]:
    sealed = [webhook.secret_sealed]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret_sealed and expires and expires > timezone.now():
        sealed.append(webhook.previous_secret_sealed)
    return [s for s in (secrets.unseal(x) for x in sealed) if s is not None]


def _authenticate(webhook: Webhook, request: Inbound, line: _Line) -> str:
    """Why the request is not authenticated ("" when it is): a Standard Webhooks signature
    when one is sent (or required), else the shared secret."""
    signature = inbound.Signature.of(request.headers)
    if signature.present:
        line.signed = True
        check = secrets.verify(
            secrets_=_signing_secrets(webhook),
            msg_id=signature.msg_id,
            timestamp=signature.timestamp,
            signature_header=signature.header,
            body=request.body,
        )
        return check.reason
    if webhook.require_signature:
        return "a Standard Webhooks signature is required (webhook-id/-timestamp/-signature)"
    presented = inbound.presented_secret(request.headers, request.query)
    if presented is None:
        return "no secret (X-Wingman-Secret, Authorization: Bearer or ?secret=)"
    if not secrets.secret_matches(presented, _valid_hashes(webhook)):
        return "wrong secret"
    return ""


def _source_ip(request: Inbound) -> str:
    trusted = inbound.networks(settings.WINGMAN_WEBHOOK_TRUSTED_PROXIES)
    forwarded = request.headers.get("X-Forwarded-For", "")
    return inbound.client_address(request.remote_addr, forwarded, trusted)


def _delivery_id(request: Inbound) -> tuple[str, bool]:
    """The sender's delivery id (``webhook-id``) and True, else a new one and False."""
    sent = request.headers.get("webhook-id", "").strip()
    return (sent, True) if sent else (f"dlv_{uuid.uuid4().hex}", False)


def _check(webhook: Webhook, request: Inbound, line: _Line) -> Answer | inbound.Body:
    """Every check that needs neither the database nor the cache, in order: the refusal,
    or the parsed body."""
    if not webhook.enabled:
        return _refusal(403, "webhook is disabled")
    if reason := _authenticate(webhook, request, line):
        headers = {"WWW-Authenticate": 'Bearer realm="wingman-webhook"'}
        return _refusal(401, reason, headers)
    if not inbound.address_allowed(line.source_ip, list(webhook.ip_allowlist or [])):
        return _refusal(403, f"address {line.source_ip or '(unknown)'} is not allowed")
    limit = settings.WINGMAN_WEBHOOK_MAX_BODY_BYTES
    if len(request.body) > limit:
        return _refusal(413, f"body over {limit} bytes")
    if len(line.delivery_id) > MAX_DELIVERY_ID:
        return _refusal(400, f"webhook-id longer than {MAX_DELIVERY_ID} characters")
    body = inbound.parse_body(
        request.body,
        request.headers.get("Content-Type", ""),
        max_depth=settings.WINGMAN_WEBHOOK_MAX_JSON_DEPTH,
    )
    return _refusal(400, body.error) if body.error else body


def _rate_limited(webhook: Webhook) -> Answer | None:
    """Count this delivery in the webhook's one-minute window (atomic across processes);
    the 429 answer when it is over the limit."""
    limit = webhook.rate_limit or settings.WINGMAN_WEBHOOK_RATE_LIMIT
    now = time.time()
    window = int(now // 60)
    count = shared.incr(f"webhooks:rl:{webhook.id}:{window}", timeout=60 - now % 60 + 1)
    if count.value <= limit:
        return None
    retry_after = max(1, math.ceil((window + 1) * 60 - now))
    return _refusal(429, f"over {limit} deliveries per minute", {"Retry-After": str(retry_after)})


def _idempotency_key(webhook: Webhook, delivery_id: str) -> str:
    key = f"{webhook.id}:{delivery_id}"
    if len(key) <= MAX_DELIVERY_ID:
        return key
    return f"{webhook.id}:sha256:{hashlib.sha256(delivery_id.encode()).hexdigest()}"


def _replayed(webhook: Webhook, delivery_id: str) -> Delivery | None:
    return (
        Delivery.objects.filter(webhook=webhook, delivery_id=delivery_id, status=202)
        .order_by("received_at")
        .first()
    )


def _accepted_body(run_id: str, session_key: str, delivery_id: str, **extra: Any) -> dict:
    return {
        "ok": True,
        "runId": run_id,
        "sessionKey": session_key,
        "deliveryId": delivery_id,
        **extra,
    }


async def _replay(line: _Line, run_id: str | None, session_key: str) -> Answer:
    """A delivery id seen before: 200 with the original run, and no second run."""
    answer = Answer(
        200, _accepted_body(run_id or "", session_key, line.delivery_id, duplicate=True)
    )
    await db_call(_record)(
        line, answer, reason="replayed delivery id", run_id=run_id, session_key=session_key
    )
    return answer


def _recorder(line: _Line, payload: Any, now) -> Callable[[Run], None]:
    """What ``run_start`` writes in the transaction that accepts the delivery's run: the
    delivery log line and the webhook's last trigger (so an accepted delivery is logged
    exactly when its run and user message are committed)."""

    def record(run: Run) -> None:
        _record(
            line,
            Answer(202, {}),
            reason="accepted",
            run_id=run.id,
            session_key=run.session.key,
            payload=payload,
            received_at=now,
        )
        Webhook.objects.filter(pk=line.webhook.pk).update(last_triggered_at=now)

    return record


async def _start(line: _Line, body: inbound.Body, now, from_sender: bool) -> RunTicket | Answer:
    """Start the delivery's run through the one run entry point (or say why not). A
    delivery id the gateway made up cannot come again: no idempotency key to look up."""
    webhook = line.webhook
    if not webhook.agent.enabled:  # its thread exists: run_start would not ask
        return await _refuse(line, _refusal(409, f"agent {webhook.agent_id!r} is disabled"))
    prompt = prompts.prompt_for(
        name=webhook.name,
        preset=webhook.preset,
        event_label=webhook.event_label,
        payload=body.payload,
    )
    request = RunRequest(
        message=prompt.text,
        source=RunSource.WEBHOOK,
        agent_id=webhook.agent_id,
        session_key=webhook.thread_key,
        idempotency_key=_idempotency_key(webhook, line.delivery_id) if from_sender else None,
        extra_system_prompt=prompts.UNTRUSTED_NOTE if prompt.fenced else None,
        # No connection asked: every subscriber of the session gets the user message.
        requester=f"webhook:{webhook.id}",
        session_name=None if webhook.session_key else f"Webhook: {webhook.name}"[:200],
        on_accept=_recorder(line, body.payload, now),
    )
    try:
        return await run_start(request=request)
    except GatewayError as error:
        return await _refuse(line, _refusal(409, f"cannot start the run: {error.message}"))


async def _accept(line: _Line, body: inbound.Body, from_sender: bool) -> Answer:
    now = timezone.now()
    started = await _start(line, body, now, from_sender)
    if isinstance(started, Answer):
        return started
    if started.duplicate:
        return await _replay(line, started.run_id, started.session_key)
    await publish.publish(
        events.WEBHOOK,
        events.WebhookPayload(
            id=line.delivery_id,
            webhookId=line.webhook.id,
            runId=started.run_id,
            sessionKey=started.session_key,
            receivedAt=int(now.timestamp() * 1000),
        ).model_dump(by_alias=True),
    )
    return Answer(202, _accepted_body(started.run_id, started.session_key, line.delivery_id))


async def delivery_receive(*, request: Inbound) -> Answer:
    """Check one inbound request in the documented order, log it, and start its run when
    it passes: the answer to send (see the module docstring)."""
    if request.method != "POST":
        webhook = await db_call(_load)(request.webhook_id)
        answer = _refusal(405, "only POST", {"Allow": "POST"})
        if webhook is not None:
            await _refuse(_Line(webhook, _source_ip(request), len(request.body)), answer)
        return answer
    webhook = await db_call(_load)(request.webhook_id)
    if webhook is None:
        return _refusal(404, f"no webhook {request.webhook_id!r}")
    line = _Line(webhook, _source_ip(request), len(request.body))
    line.delivery_id, from_sender = _delivery_id(request)
    checked = _check(webhook, request, line)
    if isinstance(checked, Answer):
        return await _refuse(line, checked)
    if from_sender:
        seen = await db_call(_replayed)(webhook, line.delivery_id)
        if seen is not None:
            return await _replay(line, seen.run_id, seen.session_key)
    if limited := await shared.run(_rate_limited, webhook):
        return await _refuse(line, limited)
    return await _accept(line, checked, from_sender)
