"""``Authorization: Bearer <secret>`` for the REST API.

The secret is the gateway token (or password, in password mode), which acts as the
operator, or a per-user API token that an admin created (``gateway.models.ApiToken``).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from gateway import auth


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
    """Bearer gateway secret; a request without the header falls through to the session."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("send Authorization: Bearer <token>")
        secret = header[1].decode("latin-1")
        if auth.credentials_valid(token=secret, password=secret):
            return GatewayOperator(), secret
        raise exceptions.AuthenticationFailed("invalid or revoked token")

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="wingman"'
