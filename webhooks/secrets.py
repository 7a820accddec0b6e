"""Webhook secrets: made, stored so they verify but cannot be read back, and checked
(shared secret or Standard Webhooks signature, constant time).

A secret is ``whsec_`` + base64 of 32 random bytes (the Standard Webhooks form: the HMAC
key is the decoded bytes; a secret imported in another form keys the HMAC with its UTF-8
bytes). Stored twice, neither in the clear:

- ``hash_secret``: SHA-256, to check a secret presented as a header, bearer token or query;
- ``seal`` / ``unseal``: the HMAC key encrypted and authenticated with a key derived from
  the gateway's ``SECRET_KEY`` (HMAC-SHA256 as the keystream PRF and as the tag: encrypt then
  MAC). Every gateway process sharing the database must share ``SECRET_KEY``; changing it
  makes signed deliveries fail until the secret is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format, not a secret
SECRET_BYTES = 32
_NONCE = 16
_TAG = 32


def generate() -> str:
    """A new secret (shown to the user once)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hint(secret: str) -> str:
    return secret[-4:]


def hmac_key(secret: str) -> bytes:
    """The HMAC key of a secret (Standard Webhooks: the base64 after ``whsec_``)."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def _seal_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"wingman.webhooks.seal.v1", "sha256").digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (length + 31) // 32
    return b"".join(
        hmac.new(key, nonce + i.to_bytes(4, "big"), "sha256").digest() for i in range(blocks)
    )[:length]


def seal(secret: str) -> str:
    """The secret encrypted and authenticated for storage."""
    key, nonce, plain = _seal_key(), secrets.token_bytes(_NONCE), secret.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain)), strict=True))
    tag = hmac.new(key, b"tag" + nonce + cipher, "sha256").digest()
    return base64.b64encode(nonce + cipher + tag).decode()


def unseal(sealed: str) -> str | None:
    """The secret of :func:`seal` (None if it was sealed under another SECRET_KEY)."""
    try:
        raw = base64.b64decode(sealed, validate=True)
    except (binascii.Error, ValueError):
        return None
    nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    key = _seal_key()
    if len(raw) < _NONCE + _TAG or not hmac.compare_digest(
        tag, hmac.new(key, b"tag" + nonce + cipher, "sha256").digest()
    ):
        return None
    stream = _keystream(key, nonce, len(cipher))
    return bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()


def secret_matches(presented: str, hashes: list[str]) -> bool:
    """Constant time: does ``presented`` hash to one of ``hashes`` (each compared)?"""
    digest = hash_secret(presented)
    found = False
    for stored in hashes:
        found |= hmac.compare_digest(digest, stored)
    return found


# Standard Webhooks signatures -----------------------------------------------------------
@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking a signed delivery: ok, or why not."""

    ok: bool
    reason: str = ""


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` (what a sender puts in the header)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(hmac_key(secret), signed, "sha256").digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    *,
    secrets_: list[str],
    msg_id: str,
    timestamp: str,
    signature_header: str,
    body: bytes,
    now: float | None = None,
) -> SignatureCheck:
    """Check a Standard Webhooks delivery: timestamp within the tolerance (either side),
    and any of the space-separated ``v1,`` signatures made with any of ``secrets_``."""
    if not msg_id or not timestamp or not signature_header:
        return SignatureCheck(False, "signature headers incomplete")
    try:
        sent = int(timestamp)
    except ValueError:
        return SignatureCheck(False, "webhook-timestamp is not a number")
    now = time.time() if now is None else now
    tolerance = settings.WINGMAN_WEBHOOK_SIGNATURE_TOLERANCE
    if sent < now - tolerance:
        return SignatureCheck(False, "signature timestamp too old")
    if sent > now + tolerance:
        return SignatureCheck(False, "signature timestamp in the future")
    offered = [part[3:].encode() for part in signature_header.split(" ") if part.startswith("v1,")]
    found = False
    for secret in secrets_:
        expected = sign(secret, msg_id, timestamp, body)[3:].encode()
        for candidate in offered:
            found |= hmac.compare_digest(expected, candidate)
    return SignatureCheck(True) if found else SignatureCheck(False, "signature does not match")
