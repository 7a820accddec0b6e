"""Credential checks for every dialect: constant-time compare and a per-IP lockout.

Browsers may instead present the Control UI's session cookie (``gateway/security/webauth.py``),
which counts only from an allowed Origin.

The lockout is shared by everything that checks the gateway secret or an API token (the
WebSocket handshake, ``/api/`` Bearer tokens, ``/stats``, ``/metrics``, the Control UI's
token login), per client IP, in the shared cache. Only failures count, each in one atomic
step after its check, and a failure that takes the count past :data:`MAX_FAILURES` is
answered as a lockout, not as "wrong": however many wrong guesses arrive at once, at most
:data:`MAX_FAILURES` of them get an answer that tells anything. Right credentials never
count, so a burst of good handshakes from one address (a NAT, a proxy, a benchmark) is never
mistaken for one; during a lockout they are refused too, until it ends.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache

from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.security import tailscale
from gateway.security.webauth import BrowserCredentials
from gateway.state import cache as shared
from gateway.state import outage

logger = logging.getLogger(__name__)

#: Failed attempts per IP within the lockout period before further attempts are refused
#: (for ``gateway.policy.authLockoutSeconds`` from the last of them, unchecked).
MAX_FAILURES = 20


class LockedOut(GatewayError):
    """Too many failed attempts from this IP: refused without checking (``retry_after_ms``
    is the time left)."""

    def __init__(self, retry_after_ms: int) -> None:
        #: Whole seconds to wait (HTTP ``Retry-After``), rounded up.
        self.retry_after_seconds = max(1, -(-retry_after_ms // 1000))
        super().__init__(
            ErrorCode.UNAUTHORIZED,
            f"too many failed authentication attempts; try again in {self.retry_after_seconds} s",
            retryable=True,
            retry_after_ms=retry_after_ms,
        )

    def for_http(self) -> GatewayError:
        """The same refusal for an HTTP endpoint: ``RATE_LIMITED`` (429 with Retry-After)."""
        return GatewayError(
            ErrorCode.RATE_LIMITED,
            self.message,
            retryable=True,
            retry_after_ms=self.retry_after_ms,
        )


def lockout_seconds() -> int:
    return settings.WINGMAN.policy.auth_lockout_seconds


def _failure_key(ip: str | None) -> str:
    return f"gw:authfail:{ip or 'unknown'}"


#: Where attempts are counted while the shared cache is unreachable (gateway/state/outage.py):
#: this process's own memory, so the lockout still holds per process and operators can
#: still read /metrics and /stats during a Redis outage.
_OUTAGE_COUNTS = LocMemCache("wingman-auth-outage", {"OPTIONS": {"MAX_ENTRIES": 100_000}})


def _count(ip: str | None, **kwargs) -> shared.Count:
    key = _failure_key(ip)
    if outage.redis_state.down:  # known to be down: do not wait for another timeout
        return shared.incr(key, timeout=lockout_seconds(), backend=_OUTAGE_COUNTS, **kwargs)
    try:
        return shared.incr(key, timeout=lockout_seconds(), **kwargs)
    except Exception as exc:
        if not outage.is_outage(exc):
            raise
        outage.redis_state.failed(exc, "counting authentication attempts (counted per process)")
        return shared.incr(key, timeout=lockout_seconds(), backend=_OUTAGE_COUNTS, **kwargs)


def record_failure(ip: str | None) -> None:
    """Count a failed attempt from ``ip``; raise :class:`LockedOut` once it is past the
    limit (the caller then answers the lockout instead of "wrong credentials").

    While the shared cache is unreachable the failure is counted in this process only."""
    count = _count(ip, refresh_at=MAX_FAILURES)
    if count.value > MAX_FAILURES:
        raise LockedOut(count.ttl_ms)


def ensure_not_locked(ip: str | None) -> None:
    """Raise :class:`LockedOut` while ``ip`` is locked out (right credentials included)."""
    count = _count(ip, delta=0)
    if count.value >= MAX_FAILURES:
        raise LockedOut(count.ttl_ms)


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
    """Raise UNAUTHORIZED unless the credentials are valid; lock out brute force per IP
    (:class:`LockedOut`, the credentials not even checked).

    With no token and no password, a browser's logged-in session cookie is accepted when
    the Origin is allowed (cross-site WebSocket hijacking is refused)."""
    try:
        await _check(token=token, password=password, browser=browser)
    except GatewayError:
        await shared.run(record_failure, ip)  # past the limit: LockedOut instead
        raise
    await shared.run(ensure_not_locked, ip)


async def _check(
    *, token: str | None, password: str | None, browser: BrowserCredentials | None
) -> None:
    if _foreign_page(browser):
        # Auth mode none trusts whoever reaches the loopback port, but not a web page the
        # user happens to have open: its WebSocket carries that page's Origin.
        raise GatewayError(ErrorCode.UNAUTHORIZED, _cookie_refusal(browser))
    if credentials_valid(token=token, password=password):
        return
    ident = browser.tailscale if browser is not None else None
    if ident is not None and ident.present and not token and not password:
        await check_tailscale(ident)
        return
    if browser is not None and browser.present and not token and not password:
        if browser.same_origin and await browser.authorized():
            return
        raise GatewayError(ErrorCode.UNAUTHORIZED, _cookie_refusal(browser))
    what = "token" if settings.WINGMAN.auth_mode == "token" else "password"
    given = token if what == "token" else password
    raise GatewayError(
        ErrorCode.UNAUTHORIZED,
        f"unauthorized: gateway {what} {'mismatch' if given else 'missing'}",
    )


async def check_tailscale(ident: tailscale.TailscaleIdentity) -> None:
    """Accept a ``tailscale serve`` identity confirmed by tailscaled, else UNAUTHORIZED."""
    if await tailscale.verify(ident) is not None:
        return
    why = tailscale.refusal(ident) or (
        f"Tailscale identity {ident.login!r} not confirmed by tailscaled (whois)"
    )
    raise GatewayError(ErrorCode.UNAUTHORIZED, f"unauthorized: {why}")


def _foreign_page(browser: BrowserCredentials | None) -> bool:
    """Auth mode none and the socket was opened by another site's page."""
    return (
        settings.WINGMAN.auth_mode == "none"
        and browser is not None
        and browser.origin is not None
        and not browser.same_origin
    )


def _cookie_refusal(browser: BrowserCredentials) -> str:
    if not browser.same_origin:
        what = "session cookie" if browser.present else "connection"
        return (
            f"unauthorized: {what} refused from Origin {browser.origin or '(none)'!r}; "
            "open the Control UI on this gateway or add the origin to WINGMAN_ALLOWED_ORIGINS"
        )
    return "unauthorized: the browser session is not logged in (log in to the Control UI)"
