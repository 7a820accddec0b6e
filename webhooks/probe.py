"""A test delivery: a sample payload sent over HTTP to a webhook's real endpoint.

``POST /api/webhooks/<id>/test``, the Control UI's "Send a test delivery" and
``wingman webhooks test`` all come here. The request goes to the gateway's own
``/webhooks/<id>`` like any sender's would (the secret as a bearer token, signed when the
webhook requires signatures), so it passes every check a real delivery passes — the IP
allowlist included: a webhook that admits only other addresses answers 403 to a test from
the gateway itself, and the test says so. It is logged as a delivery and starts a run like
any other accepted delivery.
"""

from __future__ import annotations

import json
import secrets as random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from gateway.protocol.errors import ErrorCode, GatewayError
from webhooks import secrets
from webhooks.models import Preset, Webhook
from webhooks.selectors import endpoint_path

USER_AGENT = "wingman-webhook-test"
DELIVERY_PREFIX = "msg_test_"


@dataclass(frozen=True)
class ProbeResult:
    """What the endpoint answered to the test delivery."""

    url: str
    status: int
    body: Any
    delivery_id: str

    def as_dict(self) -> dict[str, Any]:
        data = self.body if isinstance(self.body, dict) else {}
        return {
            "url": self.url,
            "status": self.status,
            "accepted": self.status in (200, 202),
            "deliveryId": data.get("deliveryId") or self.delivery_id,
            "runId": data.get("runId"),
            "sessionKey": data.get("sessionKey"),
            "response": self.body,
        }


def own_base_url(meta: dict[str, Any]) -> str:
    """This server's own listening address, from a request's ``META`` (the ASGI scope's
    ``server``): it reaches the endpoint without going back out through a proxy or a
    public name that may not resolve from here."""
    host = meta.get("SERVER_NAME") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a bind-all address is reached via loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{meta.get('SERVER_PORT') or 80}"


def sample_payload(webhook: Webhook) -> dict[str, Any]:
    """What a test sends: a gogcli Gmail watch push for ``gog-gmail``, else a message."""
    if webhook.preset == Preset.GOG_GMAIL:
        return {
            "source": "gmail",
            "account": "you@example.com",
            "historyId": "1",
            "messages": [
                {
                    "id": "test-message",
                    "threadId": "test-thread",
                    "from": "Wingman <test@example.com>",
                    "to": "you@example.com",
                    "subject": f"Test delivery of webhook {webhook.id}",
                    "date": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                    "snippet": "A test e-mail sent by Wingman to check this webhook.",
                    "labels": ["INBOX"],
                }
            ],
        }
    return {
        "event": "test",
        "message": (
            f'This is a test delivery of webhook "{webhook.name}" sent by Wingman. '
            "Reply with one short sentence confirming you received it."
        ),
    }


def _request(webhook: Webhook, url: str, body: bytes, delivery_id: str) -> urllib.request.Request:
    secret = secrets.unseal(webhook.secret_sealed)
    if secret is None:
        raise GatewayError(
            ErrorCode.CONFLICT,
            "the webhook's secret was sealed under another SECRET_KEY: rotate the secret first",
        )
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {secret}",
        "User-Agent": USER_AGENT,
    }
    if webhook.require_signature:
        now = int(time.time())
        headers["webhook-id"] = delivery_id
        headers["webhook-timestamp"] = str(now)
        headers["webhook-signature"] = secrets.sign(secret, delivery_id, now, body)
    return urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310


def webhook_probe(*, webhook: Webhook, base_url: str, timeout: float = 10.0) -> ProbeResult:
    """Send a sample delivery to ``base_url`` + the webhook's path; what it answered.
    ``UNAVAILABLE`` when the gateway cannot be reached."""
    url = base_url.rstrip("/") + endpoint_path(webhook.id)
    delivery_id = DELIVERY_PREFIX + random.token_hex(8)
    body = json.dumps(sample_payload(webhook)).encode()
    request = _request(webhook, url, body, delivery_id)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as refused:  # the endpoint's own answer (401, 403, 429, ...)
        status, raw = refused.code, refused.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GatewayError(ErrorCode.UNAVAILABLE, f"cannot reach {url}: {reason}") from None
    try:
        answer: Any = json.loads(raw)
    except ValueError:
        answer = raw.decode(errors="replace")
    return ProbeResult(url=url, status=status, body=answer, delivery_id=delivery_id)
