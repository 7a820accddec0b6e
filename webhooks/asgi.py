"""The inbound endpoints as a lean ASGI app, in front of Django (wingman/asgi.py):
``/webhooks/<id>``, ``/hooks/agent``, ``/hooks/wake``.

A delivery needs none of Django's middleware (sessions, CSRF, auth, messages), and in an
async server each sync middleware costs a thread hop per request, about twenty for the
stack: under a flood those hops, not the checks, were the cost. Here a request is read
(the body capped at ``DATA_UPLOAD_MAX_MEMORY_SIZE``, like every request), handed to the
same services as the Django views in ``views.py``, and answered with JSON.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from django.conf import settings
from django.utils.datastructures import CaseInsensitiveMapping

from gateway.state import outage
from webhooks.services import hooks
from webhooks.services.deliveries import Answer, Inbound, delivery_receive

logger = logging.getLogger(__name__)

ROUTE = re.compile(r"^/(?:webhooks/(?P<webhook>[^/]+)|hooks/(?P<hook>agent|wake))$")


def handles(scope: dict[str, Any]) -> bool:
    """Is this HTTP request for one of the inbound endpoints?"""
    return scope["type"] == "http" and ROUTE.match(scope["path"]) is not None


async def _read_body(receive, cap: int) -> tuple[bytes, int]:
    """The body, or (b"", size) once it passed ``cap`` (the rest is drained, not kept)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= cap:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return (b"".join(chunks), size) if size <= cap else (b"", size)


def _headers(scope: dict[str, Any]) -> CaseInsensitiveMapping:
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin1"), raw_value.decode("latin1")
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return CaseInsensitiveMapping(merged)


async def _send(send, answer: Answer) -> None:
    body = orjson.dumps(answer.body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.lower().encode(), str(v).encode("latin1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(scope: dict[str, Any], body: bytes) -> Answer:
    match = ROUTE.match(scope["path"])
    headers = _headers(scope)
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin1")))
    method = scope.get("method", "")
    if match["hook"]:
        handler = hooks.hook_agent if match["hook"] == "agent" else hooks.hook_wake
        return await handler(method=method, headers=headers, query=query, body=body)
    client = scope.get("client") or ("", 0)
    return await delivery_receive(
        request=Inbound(
            webhook_id=match["webhook"],
            method=method,
            headers=headers,
            query=query,
            body=body,
            remote_addr=client[0],
        )
    )


async def application(scope: dict[str, Any], receive, send) -> None:
    """The ASGI app of the inbound endpoints (only paths :func:`handles` accepts)."""
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body, size = await _read_body(receive, cap)
    if size > cap:
        await _send(send, Answer(413, {"ok": False, "error": f"body over {cap} bytes"}))
        return
    try:
        answer = await _answer(scope, body)
    except Exception as exc:
        if outage.is_outage(exc):
            outage.redis_state.failed(exc, f"serving {scope['path']}")
            answer = Answer(503, {"ok": False, "error": outage.unavailable(exc).message})
        else:
            logger.exception("%s %s failed", scope.get("method"), scope["path"])
            answer = Answer(500, {"ok": False, "error": "internal error; see the gateway log"})
    await _send(send, answer)
