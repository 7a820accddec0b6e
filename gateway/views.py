"""HTTP endpoints on the gateway port: /health, /stats, /metrics, /protocol/schema.json, and
/bench/noop (a bare view the webhook benchmark compares with)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from gateway.delivery.hub import get_hub
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.rpc import hello as selectors
from gateway.rpc.schema import protocol_schema
from gateway.security import auth
from gateway.state import outage


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


async def _refusal(request: HttpRequest) -> JsonResponse | None:
    """None when the request may see the gateway's details, else the 401 or 429 answer.

    A presented secret counts towards the per-IP auth lockout (gateway/security/auth.py)."""
    if auth.credentials_valid(token=None, password=None):  # auth mode none
        return None
    secret = _bearer(request)
    if not secret:
        if await _tailscale_user(request):
            return None
        return _unauthorized()
    try:
        await auth.authenticate(token=secret, password=secret, ip=request.META.get("REMOTE_ADDR"))
    except auth.LockedOut as locked:
        return _locked_out(locked)
    except GatewayError as error:
        if error.code == ErrorCode.UNAVAILABLE:  # the shared cache is down
            return JsonResponse({"error": error.as_dict()}, status=503)
        return _unauthorized()
    return None


async def _tailscale_user(request: HttpRequest) -> bool:
    """A ``tailscale serve`` identity confirmed by tailscaled (``allowTailscale``)."""
    from gateway.security import tailscale

    headers = {k.lower(): v for k, v in request.headers.items()}
    ident = tailscale.TailscaleIdentity.from_headers(headers, request.META.get("REMOTE_ADDR"))
    return ident.present and await tailscale.verify(ident) is not None


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


def _locked_out(locked: auth.LockedOut) -> JsonResponse:
    error = locked.for_http()
    response = JsonResponse({"error": error.as_dict()}, status=429)
    response["Retry-After"] = str(locked.retry_after_seconds)
    return response


async def health(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /health`` (public: no client details); 503 when degraded."""
    report = await selectors.health_report(await get_hub())
    if report["status"] == "healthy":
        return JsonResponse(report)
    return outage.logged(JsonResponse(report, status=503))


async def stats(request: HttpRequest) -> JsonResponse:
    """Seed 001's ``GET /stats`` (needs the gateway credentials unless auth is off)."""
    if (refusal := await _refusal(request)) is not None:
        return refusal
    return JsonResponse(await selectors.stats_report(await get_hub()))


async def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process's figures (without the cluster-wide
    connection count while Redis is unreachable)."""
    if (refusal := await _refusal(request)) is not None:
        return refusal
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


async def schema(request: HttpRequest) -> JsonResponse:
    """The JSON Schema of every frame, param and event model."""
    return JsonResponse(protocol_schema(), json_dumps_params={"indent": 2})


@csrf_exempt
async def bench_noop(request: HttpRequest) -> JsonResponse:
    """A bare Django view (the whole middleware stack, no work): what ``wingman gateway
    bench --mode webhook`` compares webhook deliveries with, on the same server."""
    return JsonResponse({"ok": True, "bytes": len(request.body)}, status=202)
