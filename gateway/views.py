"""HTTP endpoints on the gateway port: /health, /stats, /metrics, /protocol/schema.json."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

import wingman
from gateway import auth, selectors
from gateway.hub import Hub, get_hub
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


def _gateway_stats(hub: Hub, total_nodes: int) -> dict:
    return {
        "uptime": hub.stats.uptime_ms,
        "totalNodes": total_nodes,
        "totalGroups": 0,
        "messagesProcessed": hub.stats.messages_processed,
        "startedAt": int(hub.stats.started_at * 1000),
        "activeSessions": len({run.session_key for run in hub.services.get("runs", {}).values()}),
        "connections": hub.established_count,
    }


async def health(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /health`` (public: no client details)."""
    hub = await get_hub()
    entries, _ = await selectors.presence_snapshot(hub)
    return JsonResponse(
        {
            "status": "healthy",
            "version": wingman.__version__,
            "stats": _gateway_stats(hub, len(entries)),
            "timestamp": selectors.now_ms(),
        }
    )


async def stats(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /stats`` (needs the gateway credentials unless auth is off)."""
    if not _authorized(request):
        return _unauthorized()
    hub = await get_hub()
    entries, _ = await selectors.presence_snapshot(hub)
    return JsonResponse(
        {
            "gateway": _gateway_stats(hub, len(entries)),
            "nodes": {"totalNodes": len(entries), "nodes": entries},
            "groups": {"totalGroups": 0, "groups": []},
        }
    )


async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process's figures."""
    if not _authorized(request):
        return _unauthorized()
    from gateway.metrics import render

    hub = await get_hub()
    entries, _ = await selectors.presence_snapshot(hub)
    body, content_type = render(hub, cluster_connections=len(entries))
    return HttpResponse(body, content_type=content_type)


async def schema(request: HttpRequest) -> JsonResponse:
    """The JSON Schema of every frame, param and event model."""
    return JsonResponse(protocol_schema(), json_dumps_params={"indent": 2})
