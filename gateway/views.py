"""HTTP endpoints on the gateway port: /health, /stats, /metrics, /protocol/schema.json."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from gateway import auth, outage, selectors
from gateway.hub import get_hub
from gateway.protocol.schema import protocol_schema


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _authorized(request: HttpRequest) -> bool:
    secret = _bearer(request)
    return auth.credentials_valid(token=secret, password=secret)


def _unauthorized() -> JsonResponse:
    response = JsonResponse(
        {
            "error": {
                "code": "UNAUTHORIZED",
                "message": "send Authorization: Bearer <gateway token>",
            }
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="wingman"'
    return response


async def health(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /health`` (public: no client details); 503 when degraded."""
    report = await selectors.health_report(await get_hub())
    if report["status"] == "healthy":
        return JsonResponse(report)
    return outage.logged(JsonResponse(report, status=503))


async def stats(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /stats`` (needs the gateway credentials unless auth is off)."""
    if not _authorized(request):
        return _unauthorized()
    return JsonResponse(await selectors.stats_report(await get_hub()))


async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process's figures (without the cluster-wide
    connection count while Redis is unreachable)."""
    if not _authorized(request):
        return _unauthorized()
    from gateway.metrics import render

    hub = await get_hub()
    try:
        entries, _ = await selectors.presence_snapshot(hub)
        cluster: int | None = len(entries)
    except outage.ERRORS as exc:
        outage.redis_state.failed(exc, "answering /metrics")
        cluster = None
    body, content_type = render(hub, cluster_connections=cluster)
    return HttpResponse(body, content_type=content_type)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: Redis being unreachable is a JSON 503 on every endpoint (logged once
    per outage, gateway/outage.py); any other error keeps Django's page."""
    exc = sys.exc_info()[1]
    if exc is None or not outage.is_outage(exc):
        return defaults.server_error(request)
    outage.redis_state.failed(exc, f"serving {request.path}")
    error = outage.unavailable(exc)
    # the REST API's error shape under /api/ (gateway/api/exceptions.py), ours elsewhere
    body = (
        {"detail": error.message, "code": str(error.code)}
        if request.path.startswith("/api/")
        else {"error": error.as_dict()}
    )
    return outage.logged(JsonResponse(body, status=503))


async def schema(request: HttpRequest) -> JsonResponse:
    """The JSON Schema of every frame, param and event model."""
    return JsonResponse(protocol_schema(), json_dumps_params={"indent": 2})
