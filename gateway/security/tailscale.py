"""``gateway.auth.allowTailscale``: a request proxied by this machine's ``tailscale serve``
is authenticated by the tailnet identity Tailscale attached to it.

``tailscale serve`` forwards tailnet requests to the gateway on loopback with
``Tailscale-User-Login`` / ``Tailscale-User-Name`` headers and the caller's tailnet address
in ``X-Forwarded-For``. Those headers are trusted only when all of these hold:
``allowTailscale`` is on; the request comes from loopback (the local proxy — never from a
peer, who could write any header); and tailscaled's LocalAPI (``/localapi/v0/whois`` on its
unix socket) says the forwarded address belongs to exactly that login.

This module also holds the small LocalAPI client that discovery uses
(gateway/discovery/tailscale.py).
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import logging
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: The Host header tailscaled's LocalAPI expects.
LOCALAPI_HOST = "local-tailscaled.sock"
WHOIS_TIMEOUT = 2.0


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over tailscaled's unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(LOCALAPI_HOST, timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def localapi_get(socket_path: str, path: str, timeout: float) -> Any:
    """``GET <path>`` on the LocalAPI as JSON; OSError / ValueError when it cannot."""
    conn = _UnixHTTPConnection(socket_path, timeout)
    try:
        conn.request("GET", path, headers={"Host": LOCALAPI_HOST})
        resp = conn.getresponse()
        body = resp.read()
    except http.client.HTTPException as exc:
        raise OSError(f"bad LocalAPI answer: {exc}") from exc
    finally:
        conn.close()
    if resp.status != 200:
        raise OSError(f"LocalAPI {path} answered {resp.status}: {body[:200]!r}")
    return json.loads(body)


def whois(socket_path: str, addr: str, timeout: float = WHOIS_TIMEOUT) -> dict | None:
    """The LocalAPI's ``WhoIsResponse`` (Node, UserProfile) for an address, or None."""
    path = f"/localapi/v0/whois?addr={urllib.parse.quote(addr)}"
    try:
        found = localapi_get(socket_path, path, timeout)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


@dataclass(frozen=True)
class TailscaleIdentity:
    """The Tailscale identity headers of one request and who sent it to us."""

    login: str | None
    name: str | None
    forwarded_for: str | None
    peer_ip: str | None

    @classmethod
    def from_headers(cls, headers: dict[str, str], peer_ip: str | None) -> TailscaleIdentity:
        """From lower-cased header names (no I/O)."""
        return cls(
            login=headers.get("tailscale-user-login") or None,
            name=headers.get("tailscale-user-name") or None,
            forwarded_for=headers.get("x-forwarded-for") or None,
            peer_ip=peer_ip,
        )

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> TailscaleIdentity:
        wanted = (b"tailscale-user-login", b"tailscale-user-name", b"x-forwarded-for")
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name in wanted
        }
        client = scope.get("client") or (None, None)
        return cls.from_headers(headers, client[0])

    @property
    def present(self) -> bool:
        return self.login is not None

    def caller_ip(self) -> str | None:
        """The tailnet address ``tailscale serve`` put last in X-Forwarded-For."""
        if not self.forwarded_for:
            return None
        last = self.forwarded_for.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last.strip("[]")))
        except ValueError:
            return None


def _from_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def refusal(identity: TailscaleIdentity) -> str | None:
    """Why these headers cannot be trusted before asking tailscaled, or None."""
    from django.conf import settings

    if not settings.WINGMAN.allow_tailscale:
        return "Tailscale identity headers are ignored (gateway.auth.allowTailscale is off)"
    if not _from_loopback(identity.peer_ip):
        return "Tailscale identity headers are trusted only from the local tailscale serve"
    if identity.caller_ip() is None:
        return "Tailscale identity without the caller's address (X-Forwarded-For)"
    return None


async def verify(identity: TailscaleIdentity) -> str | None:
    """The verified login, or None (then :func:`refusal` or a whois mismatch says why)."""
    from django.conf import settings

    if not identity.present or refusal(identity) is not None:
        return None
    caller = identity.caller_ip()
    sock = settings.WINGMAN.discovery.tailscale.socket
    found = await asyncio.to_thread(whois, sock, str(caller))
    login = ((found or {}).get("UserProfile") or {}).get("LoginName")
    if not login or login.lower() != (identity.login or "").lower():
        logger.warning(
            "Tailscale identity %r from %s not confirmed by tailscaled (whois: %r)",
            identity.login,
            caller,
            login,
        )
        return None
    return login
