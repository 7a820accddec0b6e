"""What an inbound delivery carries, read without side effects: the sender's address (proxy
headers believed only from trusted proxies), the secret it presents, its signature headers,
and its body (JSON, or text)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.protocol.dialects.base import loads

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Iterable[str]) -> list[IPNetwork]:
    """Addresses and CIDRs as networks (invalid entries are skipped: they were validated
    when saved, and settings are checked at startup)."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return out


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in(address, nets: list[IPNetwork]) -> bool:
    return address is not None and any(address in net for net in nets)


def client_address(remote: str, forwarded_for: str, trusted: list[IPNetwork]) -> str:
    """The sender's address: the peer's, unless the peer is a trusted proxy; then the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (entries to the
    left of it are whatever the client wrote, so a spoofed one never counts). An entry that
    is not an address gives "" (matches no allowlist)."""
    peer = _address(remote)
    if not forwarded_for or not _in(peer, trusted):
        return remote
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        address = _address(hop)
        if address is None:
            return ""
        if not _in(address, trusted):
            return str(address)
    return remote


def address_allowed(address: str, allowlist: list[str]) -> bool:
    """Is ``address`` in the allowlist (an empty allowlist allows everyone)?"""
    if not allowlist:
        return True
    return _in(_address(address), networks(allowlist))


def presented_secret(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The shared secret as sent: ``X-Wingman-Secret``, ``Authorization: Bearer`` (gogcli's
    ``--hook-token``) or ``?secret=``."""
    if secret := headers.get("X-Wingman-Secret", "").strip():
        return secret
    authorization = headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    return query.get("secret") or None


@dataclass(frozen=True)
class Signature:
    """The Standard Webhooks headers of a delivery (all empty when unsigned)."""

    msg_id: str = ""
    timestamp: str = ""
    header: str = ""

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Signature:
        return cls(
            headers.get("webhook-id", "").strip(),
            headers.get("webhook-timestamp", "").strip(),
            headers.get("webhook-signature", "").strip(),
        )

    @property
    def present(self) -> bool:
        return bool(self.header)


@dataclass
class Body:
    """A parsed body: JSON (``is_json``) or text; ``error`` says why it is refused (400)."""

    payload: Any = None
    is_json: bool = False
    error: str = ""


def _too_deep(value: Any, limit: int) -> bool:
    """Deeper than ``limit`` levels of arrays/objects (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _looks_like_json(text: str) -> bool:
    return text[:1] in ("{", "[")


def parse_body(body: bytes, content_type: str, *, max_depth: int) -> Body:
    """JSON when declared (``application/json``, ``+json``) or when a text body parses as
    an object/array; other text is kept as text. Malformed declared JSON, JSON deeper than
    ``max_depth`` and bodies that are not UTF-8 are refused."""
    declared = content_type.split(";")[0].strip().lower()
    is_declared = declared == "application/json" or declared.endswith("+json")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Body(error="body is not UTF-8 text")
    stripped = text.strip()
    if is_declared or _looks_like_json(stripped):
        try:
            payload = loads(body) if stripped else None
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc) or "recursion" in str(exc):
                return Body(error=f"JSON nested deeper than {max_depth} levels")
            return Body(error="malformed JSON") if is_declared else Body(payload=text)
        if _too_deep(payload, max_depth):
            return Body(error=f"JSON nested deeper than {max_depth} levels")
        return Body(payload=payload, is_json=stripped != "")
    return Body(payload=text)
