"""HTTP endpoints on the gateway port: /health, /stats, /metrics, /protocol/schema.json."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from gateway.delivery.hub import get_hub
from gateway.rpc import hello as selectors
from gateway.rpc.schema import protocol_schema
from gateway.security import auth


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
    """Seed 001's ``GET /health`` (public: no client details)."""
    return JsonResponse(await selectors.health_report(await get_hub()))


async def stats(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /stats`` (needs the gateway credentials unless auth is off)."""
    if not _authorized(request):
        return _unauthorized()
    return JsonResponse(await selectors.stats_report(await get_hub()))


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
