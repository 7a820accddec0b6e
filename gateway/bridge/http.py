"""Plain ASGI HTTP helpers of the bridge: request body, query, headers, JSON answers, CORS."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings

#: Header (and ``?session=``) naming the bridge session of a request.
SESSION_HEADER = "x-wingman-session"
CORS_ALLOW_HEADERS = "content-type, x-wingman-session, last-event-id"


class BadRequest(Exception):
    """Answer with ``status`` and a JSON error; nothing was changed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def header(scope: dict, name: str) -> str | None:
    """A request header (first occurrence), decoded as latin-1."""
    raw = name.encode("latin-1")
    for key, value in scope.get("headers") or ():
        if key == raw:
            return value.decode("latin-1")
    return None


def query(scope: dict) -> dict[str, str]:
    """The query string's parameters (last value wins)."""
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[-1] for k, v in parsed.items()}


def int_param(params: dict[str, str], name: str, default: int) -> int:
    """A non-negative integer query parameter; ``BadRequest`` when it is not one."""
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise BadRequest(400, "INVALID_REQUEST", f"{name}: expected a non-negative integer")
    return number


async def read_body(receive, limit: int) -> bytes:
    """The request body; ``BadRequest`` (413) past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest(400, "INVALID_REQUEST", "client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, "PAYLOAD_TOO_LARGE", f"request body over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def cors_headers(scope: dict) -> list[tuple[bytes, bytes]]:
    """CORS headers for an allowed cross-origin request (none otherwise)."""
    origin = header(scope, "origin")
    if not origin or not origin_allowed(origin):
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-expose-headers", SESSION_HEADER.encode()),
        (b"vary", b"Origin"),
    ]


def origin_allowed(origin: str) -> bool:
    """The origin is in ``gateway.bridge.corsOrigins`` (or that list holds ``*``)."""
    allowed = {o.rstrip("/").lower() for o in settings.WINGMAN.bridge.cors_origins}
    return "*" in allowed or origin.rstrip("/").lower() in allowed


async def preflight(scope: dict, send) -> None:
    """Answer an ``OPTIONS`` preflight: 204 for an allowed origin, 403 otherwise."""
    headers = cors_headers(scope)
    if not headers:
        await respond(send, 403, {"error": {"code": "FORBIDDEN", "message": "origin not allowed"}})
        return
    headers += [
        (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
        (b"access-control-allow-headers", CORS_ALLOW_HEADERS.encode()),
        (b"access-control-max-age", b"600"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def respond(
    send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON answer (``body`` a value, or JSON text already encoded)."""
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": start + (headers or [])}
    )
    await send({"type": "http.response.body", "body": data})
