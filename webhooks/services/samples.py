"""Test deliveries: a sample (or given) payload sent through the real endpoint's checks,
signed with the webhook's own secret, for ``POST /api/webhooks/<id>/test`` and the UI."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from django.utils.datastructures import CaseInsensitiveMapping

from gateway.state.db import db_call
from webhooks import secrets
from webhooks.services.deliveries import Answer, Inbound, _load, _refusal, delivery_receive

#: What ``webhook_test`` sends when given no payload, per preset.
SAMPLE_PAYLOADS: dict[str, Any] = {
    "none": {"event": "test", "source": "wingman", "note": "a test delivery sent by the gateway"},
    "gog-gmail": {
        "source": "gmail",
        "account": "you@example.com",
        "historyId": "1",
        "messages": [
            {
                "id": "test-1",
                "threadId": "test-1",
                "from": "Wingman <test@example.com>",
                "to": "you@example.com",
                "subject": "Test delivery",
                "date": "Mon, 1 Jan 2024 09:00:00 +0000",
                "snippet": "A test delivery sent by the gateway",
                "labels": ["INBOX"],
            }
        ],
    },
}


def _test_request(webhook_id: str, payload: Any, remote_addr: str) -> Inbound | None:
    webhook = _load(webhook_id)
    if webhook is None:
        return None
    body = orjson.dumps(payload if payload is not None else SAMPLE_PAYLOADS[webhook.preset])
    secret = secrets.unseal(webhook.secret_sealed) or ""
    msg_id, timestamp = f"test_{uuid.uuid4().hex}", str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": secrets.sign(secret, msg_id, timestamp, body),
    }
    return Inbound(webhook_id, "POST", CaseInsensitiveMapping(headers), {}, body, remote_addr)


async def webhook_test(
    *, webhook_id: str, payload: Any = None, remote_addr: str = "127.0.0.1"
) -> Answer:
    """Send a sample (or the given) payload through the real endpoint's checks, signed with
    the webhook's own secret (the caller never sees it): the answer the endpoint gave —
    202 and a run, or why not (disabled, address not allowed, rate limit, ...)."""
    request = await db_call(_test_request)(webhook_id, payload, remote_addr)
    if request is None:
        return _refusal(404, f"no webhook {webhook_id!r}")
    return await delivery_receive(request=request)
