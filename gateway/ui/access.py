"""Who may see the Control UI: a logged-in browser session (``gateway/security/webauth.py``), or
anyone when the gateway runs with auth mode ``none`` (allowed on loopback only)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from gateway.security.webauth import session_authorized

#: Scripts, styles and the WebSocket come from this origin only; user text never runs.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def login_needed() -> bool:
    """False only in auth mode ``none``: then the gateway itself asks for nothing."""
    return settings.WINGMAN.auth_mode != "none"


def ui_authorized(request: HttpRequest) -> bool:
    if not login_needed():
        return True
    return session_authorized(user=request.user, session=request.session)


def with_csp(response: HttpResponse) -> HttpResponse:
    response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


def ui_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send a visitor who has not logged in to the login page (``?next=`` back here)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not ui_authorized(request):
            return redirect_to_login(request.get_full_path())
        return with_csp(view(request, *args, **kwargs))

    return wrapped
