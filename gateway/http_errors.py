"""HTTP errors outside the API views as ``{"detail", "code"}`` JSON, like the API's own.

Django answers 400/403/404/500 and CSRF failures with HTML pages, which is right for a
browser and wrong for ``/api/`` and the JSON endpoints (``/health``, ``/stats``). The handlers
here (``handler400`` ... in wingman/urls.py, ``CSRF_FAILURE_VIEW``) answer JSON under
``/api/`` and to every client that does not ask for HTML, and Django's pages otherwise.
``BodySizeLimitMiddleware`` refuses an oversized body with 413 before anything reads it.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.views import csrf, defaults

from gateway.protocol.errors import ErrorCode
from gateway.state import outage

API_PREFIX = "/api/"


def wants_json(request: HttpRequest) -> bool:
    """The API, and any client that does not list HTML in ``Accept`` (curl, scripts)."""
    return request.path.startswith(API_PREFIX) or "text/html" not in request.headers.get(
        "Accept", ""
    )


def error_json(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def too_large(request: HttpRequest) -> HttpResponse:
    """413: the body is over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    detail = f"request body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
    if wants_json(request):
        return error_json(413, detail, str(ErrorCode.PAYLOAD_TOO_LARGE))
    return HttpResponse(f"Payload too large: {detail}", status=413, content_type="text/plain")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler400``: e.g. a Host that is not allowed, or too many form fields."""
    if isinstance(exception, RequestDataTooBig):  # a body without Content-Length, read late
        return too_large(request)
    if wants_json(request):
        return error_json(400, "bad request", "bad_request")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler403``."""
    if wants_json(request):
        return error_json(403, str(exception or "") or "forbidden", "permission_denied")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``."""
    if wants_json(request):
        return error_json(404, f"no such resource: {request.path}", "not_found")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500`` (the traceback is in the gateway log, not in the answer). Redis being
    unreachable is a JSON 503 on every endpoint, logged once per outage (state/outage.py)."""
    exc = sys.exc_info()[1]
    if exc is not None and outage.is_outage(exc):
        return _unavailable(request, exc)
    if wants_json(request):
        return error_json(500, "internal error; see the gateway log", "server_error")
    return defaults.server_error(request)


def _unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    outage.redis_state.failed(exc, f"serving {request.path}")
    error = outage.unavailable(exc)
    # the REST API's error shape under /api/ (gateway/api/exceptions.py), ours elsewhere
    body = (
        {"detail": error.message, "code": str(error.code)}
        if request.path.startswith("/api/")
        else {"error": error.as_dict()}
    )
    return outage.logged(JsonResponse(body, status=503))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a form post without its CSRF token."""
    if wants_json(request):
        return error_json(403, f"CSRF failed: {reason}", "permission_denied")
    return csrf.csrf_failure(request, reason)


class BodySizeLimitMiddleware(MiddlewareMixin):
    """413 for a ``Content-Length`` over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, first thing.

    Left to Django, the first read of ``request.body`` raises ``RequestDataTooBig``: an HTML
    400 and an ERROR with a traceback for what is only a client's mistake. The gateway
    takes no file uploads, so the limit holds for every body.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return bad_request(request)
        if limit is not None and length > limit:
            return too_large(request)
        return None
