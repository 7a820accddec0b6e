"""Credential checks for every dialect: constant-time compare and a per-IP lockout.

Browsers may instead present the Control UI's session cookie (``gateway/security/webauth.py``),
which counts only from an allowed Origin.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.cache import cache

from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.security.webauth import BrowserCredentials
from gateway.state import cache as shared

#: Failed attempts per IP within ``LOCKOUT_SECONDS`` before further attempts are refused.
MAX_FAILURES = 20
LOCKOUT_SECONDS = 60


def _matches(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        # Still spend a compare so timing does not tell "missing" from "wrong".
        hmac.compare_digest(b"x", b"y")
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def credentials_valid(*, token: str | None, password: str | None) -> bool:
    """True when the credentials satisfy the configured auth mode."""
    cfg = settings.WINGMAN
    if cfg.auth_mode == "none":
        return True
    if cfg.auth_mode == "token":
        return _matches(token, cfg.token)
    return _matches(password, cfg.password)


async def authenticate(
    *,
    token: str | None,
    password: str | None,
    ip: str | None,
    browser: BrowserCredentials | None = None,
) -> None:
    """Raise UNAUTHORIZED unless the credentials are valid; lock out brute force per IP.

    With no token and no password, a browser's logged-in session cookie is accepted when
    the Origin is allowed (cross-site WebSocket hijacking is refused)."""
    key = f"gw:authfail:{ip or 'unknown'}"
    failures = await shared.run(cache.get, key, 0)
    if failures >= MAX_FAILURES:
        raise GatewayError(
            ErrorCode.UNAUTHORIZED,
            "too many failed authentication attempts; try again later",
            retryable=True,
            retry_after_ms=LOCKOUT_SECONDS * 1000,
        )
    if _foreign_page(browser):
        # Auth mode none trusts whoever reaches the loopback port, but not a web page the
        # user happens to have open: its WebSocket carries that page's Origin.
        await _count_failure(key)
        raise GatewayError(ErrorCode.UNAUTHORIZED, _cookie_refusal(browser))
    if credentials_valid(token=token, password=password):
        return
    if browser is not None and browser.present and not token and not password:
        if browser.same_origin and await browser.authorized():
            return
        await _count_failure(key)
        raise GatewayError(ErrorCode.UNAUTHORIZED, _cookie_refusal(browser))
    await _count_failure(key)
    what = "token" if settings.WINGMAN.auth_mode == "token" else "password"
    given = token if what == "token" else password
    raise GatewayError(
        ErrorCode.UNAUTHORIZED,
        f"unauthorized: gateway {what} {'mismatch' if given else 'missing'}",
    )


def _foreign_page(browser: BrowserCredentials | None) -> bool:
    """Auth mode none and the socket was opened by another site's page."""
    return (
        settings.WINGMAN.auth_mode == "none"
        and browser is not None
        and browser.origin is not None
        and not browser.same_origin
    )


async def _count_failure(key: str) -> None:
    if not await cache.aadd(key, 1, timeout=LOCKOUT_SECONDS):
        try:
            await cache.aincr(key)
        except ValueError:
            await cache.aset(key, 1, timeout=LOCKOUT_SECONDS)


def _cookie_refusal(browser: BrowserCredentials) -> str:
    if not browser.same_origin:
        what = "session cookie" if browser.present else "connection"
        return (
            f"unauthorized: {what} refused from Origin {browser.origin or '(none)'!r}; "
            "open the Control UI on this gateway or add the origin to WINGMAN_ALLOWED_ORIGINS"
        )
    return "unauthorized: the browser session is not logged in (log in to the Control UI)"
