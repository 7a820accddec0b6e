"""Control UI pages: login/logout, chat, status (the agents pages live in ``agents/ui/``).

The chat and status pages are templates plus plain ES modules (``gateway/static/ui/``) that
speak the canonical protocol over ``/ws``, authenticated by this login's session cookie.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

import wingman
from gateway.delivery import extensions
from gateway.protocol.errors import GatewayError
from gateway.security import auth
from gateway.security.webauth import SESSION_FLAG
from gateway.ui.access import login_needed, ui_authorized, ui_login_required, with_csp
from gateway.ui.forms import GatewaySecretForm


# login / logout --------------------------------------------------------------------------
def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def _secret_valid(request: HttpRequest, secret: str) -> GatewayError | None:
    """Check the gateway secret with the WebSocket's per-IP lockout; the error or None."""
    try:
        async_to_sync(auth.authenticate)(
            token=secret, password=secret, ip=request.META.get("REMOTE_ADDR")
        )
    except GatewayError as error:
        return error
    return None


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """A Django user (username + password) or the gateway token/password."""
    if ui_authorized(request):
        return redirect(_next_url(request))
    secret_form = GatewaySecretForm(prefix="gw")
    user_form = AuthenticationForm(request, prefix="user")
    locked: auth.LockedOut | None = None
    if request.method == "POST" and request.POST.get("method") == "secret":
        secret_form = GatewaySecretForm(request.POST, prefix="gw")
        if secret_form.is_valid():
            error = _secret_valid(request, secret_form.cleaned_data["secret"])
            if error is None:
                request.session.cycle_key()  # no session fixation
                request.session[SESSION_FLAG] = True
                return redirect(_next_url(request))
            secret_form.add_error("secret", error.message)
            locked = error if isinstance(error, auth.LockedOut) else None
    elif request.method == "POST" and request.POST.get("method") == "user":
        user_form = AuthenticationForm(request, data=request.POST, prefix="user")
        if user_form.is_valid():
            auth_login(request, user_form.get_user())  # rotates the session key
            return redirect(_next_url(request))
    elif request.method == "POST":
        messages.error(request, "Unknown login method.")
    context = {
        "secret_form": secret_form,
        "user_form": user_form,
        "next": request.POST.get("next") or request.GET.get("next") or "",
        "secret_label": "password" if settings.WINGMAN.auth_mode == "password" else "token",
    }
    response = render(request, "ui/login.html", context, status=_status(request, locked))
    if locked is not None:
        response["Retry-After"] = str(locked.retry_after_seconds)
    return with_csp(response)


def _status(request: HttpRequest, locked: auth.LockedOut | None) -> int:
    """429 while locked out, 400 for another failed login POST (the page shows why), else
    200."""
    if locked is not None:
        return 429
    return 400 if request.method == "POST" else 200


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Forget the Django user and the gateway-secret flag (the session is flushed)."""
    auth_logout(request)
    if not login_needed():
        return redirect("ui:chat")
    return redirect("ui:login")


# pages -------------------------------------------------------------------------------------
def client_config(request: HttpRequest, page: str) -> dict:
    """What the page's script needs (read with json_script, never executed)."""
    return {
        "page": page,
        "wsPath": "/ws",
        "version": wingman.__version__,
        "loginUrl": reverse("ui:login"),
        "chatUrl": reverse("ui:chat"),
    }


def script_page(request: HttpRequest, page: str) -> HttpResponse:
    """A page its script fills over the WebSocket: ``ui/<page>.html``, its nav entry marked,
    with :func:`client_config` (the chat here; rooms, nodes and devices in their apps)."""
    return render(request, f"ui/{page}.html", {"nav": page, "config": client_config(request, page)})


@ui_login_required
def chat(request: HttpRequest) -> HttpResponse:
    """Sessions sidebar, messages and composer; everything live over the WebSocket."""
    return script_page(request, "chat")


@ui_login_required
def status(request: HttpRequest) -> HttpResponse:
    """Health, uptime, connections and presence (kept current by ``status.js``)."""
    context = {
        "nav": "status",
        "counts": extensions.stored(),
        "config": client_config(request, "status"),
        "auth_mode": settings.WINGMAN.auth_mode,
        "gateway_name": settings.WINGMAN.name,
    }
    return render(request, "ui/status.html", context)
