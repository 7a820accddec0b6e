"""Browser authentication: the Control UI's login session, reused by its WebSocket.

A browser logs in once (a Django user, or the gateway token/password, see
``gateway/ui/views.py``); its WebSocket then sends ``connect`` with no token and is
authenticated by the session cookie. A cookie is sent by the browser to any page that
opens a socket to us, so the cookie counts only when the ``Origin`` header is the page's
own origin (the ``Host`` it connected to) or listed in ``WINGMAN_ALLOWED_ORIGINS``:
cross-site WebSocket hijacking is refused (design/reliability.md #7). Token clients (CLI,
nodes) authenticate in the first frame and need no Origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from gateway.security.tailscale import TailscaleIdentity

#: Session key set by the Control UI's token/password login (no Django user behind it).
SESSION_FLAG = "wingman.gateway_auth"


def session_authorized(*, user: Any, session: Any) -> bool:
    """True for a logged-in active Django user or a session that gave the gateway secret."""
    if user is not None and getattr(user, "is_authenticated", False) and user.is_active:
        return True
    return bool(session.get(SESSION_FLAG))


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """The page's own origin (its host:port equals the Host header, and that host is one we
    answer to: ``ALLOWED_HOSTS``, which stops DNS rebinding) or a configured one."""
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if host and parts.netloc.lower() == host.lower():
        domain, _port = split_domain_port(host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            return True
    allowed = {o.rstrip("/").lower() for o in settings.WINGMAN_ALLOWED_ORIGINS}
    return origin.rstrip("/").lower() in allowed


@dataclass(frozen=True)
class BrowserCredentials:
    """What a WebSocket upgrade request carried that matters for header auth: the session
    cookie, and the Tailscale identity headers (gateway/security/tailscale.py)."""

    session_key: str | None
    origin: str | None
    host: str | None
    tailscale: TailscaleIdentity | None = None

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> BrowserCredentials:
        """Parse headers only; no I/O (every connection pays this)."""
        origin = host = cookie = None
        for name, value in scope.get("headers") or ():
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"cookie":
                cookie = value.decode("latin-1")
        return cls(
            session_key=_session_key(cookie),
            origin=origin,
            host=host,
            tailscale=TailscaleIdentity.from_scope(scope),
        )

    @property
    def present(self) -> bool:
        """A session cookie came with the upgrade request."""
        return self.session_key is not None

    @property
    def same_origin(self) -> bool:
        return origin_allowed(self.origin, self.host)

    async def authorized(self) -> bool:
        """The session behind the cookie is logged in (one thread hop to the session store)."""
        if self.session_key is None:
            return False
        return await database_sync_to_async(_session_key_authorized)(self.session_key)


def _session_key(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None and morsel.value else None


def _session_key_authorized(session_key: str) -> bool:
    from importlib import import_module

    from django.contrib.auth import get_user

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # get_user() checks the session's auth hash, so a changed password logs the socket out.
    user = get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    return session_authorized(user=user, session=store)
