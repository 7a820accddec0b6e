"""Who is calling ``/api/``.

In order (settings ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``):

1. ``Authorization: Bearer <secret>``: a per-user API token (``gateway.models.ApiToken``,
   created in the admin) acts as its user; the gateway token (or password, in password
   mode) acts as the operator. Both count towards the per-IP auth lockout the WebSocket
   uses (``gateway/security/auth.py``): a locked-out client gets 429 with ``Retry-After``.
2. The browser's login session (the Control UI), with CSRF on unsafe methods: a Django
   user, or a session that logged in with the gateway secret (``gateway/security/webauth.py``).
3. Auth mode ``none`` (allowed on loopback only): a request without credentials is the
   operator, as a WebSocket ``connect`` without a token is — unless a browser sent it from
   another site's page (its ``Origin``), so a web page cannot drive a local gateway.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import DisallowedHost
from rest_framework import authentication, exceptions

from gateway.protocol.errors import GatewayError
from gateway.security import auth, tokens, webauth


class GatewayOperator(AnonymousUser):
    """The principal behind the gateway's own secret: authenticated, allowed everything."""

    id = None
    pk = None
    username = "gateway"
    is_staff = True
    is_superuser = True

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def is_authenticated(self) -> bool:
        return True

    def __str__(self) -> str:
        return "gateway"


class BearerAuthentication(authentication.BaseAuthentication):
    """Bearer API token or gateway secret; a request without the header falls through."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("send Authorization: Bearer <token>")
        secret = header[1].decode("latin-1")
        ip = request.META.get("REMOTE_ADDR")
        found = self._lookup(secret)
        try:
            if found is None:
                auth.record_failure(ip)  # past the limit: LockedOut
            else:
                auth.ensure_not_locked(ip)
        except GatewayError as error:  # locked out (429), or the cache is down (503)
            # imported here: gateway.api.exceptions imports rest_framework.views, which
            # imports the authentication classes (this module) from the settings
            from gateway.api.exceptions import GatewayAPIError

            if isinstance(error, auth.LockedOut):
                error = error.for_http()
            raise GatewayAPIError(error) from None
        if found is None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        return found

    @staticmethod
    def _lookup(secret: str):
        token = tokens.api_token_lookup(secret=secret)
        if token is not None:
            return token.user, token
        if auth.credentials_valid(token=secret, password=secret):
            return GatewayOperator(), None
        return None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="wingman"'


class GatewaySessionAuthentication(authentication.SessionAuthentication):
    """The Control UI's session: a logged-in user, or a gateway-secret login (with CSRF)."""

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None:
            return found
        session = getattr(request._request, "session", None)
        if session is not None and session.get(webauth.SESSION_FLAG):
            self.enforce_csrf(request)
            return GatewayOperator(), None
        return None


class NoAuthModeAuthentication(authentication.BaseAuthentication):
    """Auth mode ``none``: no credentials needed, except from another site's page."""

    def authenticate(self, request):
        if settings.WINGMAN.auth_mode != "none":
            return None
        origin = request.headers.get("Origin")
        if origin and not webauth.origin_allowed(origin, _host(request)):
            return None
        return GatewayOperator(), None


def _host(request) -> str | None:
    try:
        return request.get_host()
    except DisallowedHost:
        return None
