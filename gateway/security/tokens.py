"""API token writes and the lookup behind ``Authorization: Bearer <token>``.

A token is ``wm_`` + 43 random URL-safe characters. Only its SHA-256 hash is stored, so a
database leak does not leak usable secrets; the raw secret is returned once by
:func:`api_token_create` and never again.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from gateway.models import ApiToken

#: Every API token starts with this, so a bearer secret can be told from the gateway token.
TOKEN_PREFIX = "wm_"  # noqa: S105 - a marker, not a secret
#: Characters of the secret kept visible (``ApiToken.prefix``).
VISIBLE_CHARS = 10
#: ``last_used_at`` is written at most this often per token (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with the raw secret (shown once, never stored)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["a name is required (what the token is for)"]})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ValidationError({"name": ["at most 100 characters"]})
    if not user.is_active:
        raise ValidationError({"user": ["the user is inactive"]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:VISIBLE_CHARS], key_hash=_digest(secret)
    )
    return token, secret


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke ``token`` at once (idempotent: the first revocation time is kept)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_lookup(*, secret: str) -> ApiToken | None:
    """The active token (of an active user) for a raw secret, or None; records its use."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is not None:
        _touch(token)
    return token


def _touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
