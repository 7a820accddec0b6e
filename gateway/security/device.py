"""Device identity: verify the Ed25519 signature a client sends in ``connect.params.device``.

OpenClaw's ``buildDeviceAuthPayloadV3`` signs the UTF-8 string
``v3|<deviceId>|<clientId>|<clientMode>|<role>|<scopes,>|<signedAt>|<token>|<nonce>|<platform>|<deviceFamily>``
(platform and deviceFamily lowercased); v2 is the same without the last two fields.
``publicKey`` is the raw 32-byte key and ``signature`` the 64-byte signature, both base64url
without padding; ``deviceId`` is the hex sha256 of the raw key; ``nonce`` and ``signedAt``
echo this connection's ``connect.challenge`` (``nonce``, ``ts``). Every failure is an
``INVALID_REQUEST`` whose ``details.code`` names it; the connection then closes 1008.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.protocol.errors import ErrorCode, GatewayError

#: How far ``signedAt`` may be from the server clock (OpenClaw: 120 s).
MAX_SKEW_MS = 120_000

SIGNATURE_INVALID = "DEVICE_AUTH_SIGNATURE_INVALID"
NONCE_MISMATCH = "DEVICE_AUTH_NONCE_MISMATCH"
SIGNATURE_EXPIRED = "DEVICE_AUTH_SIGNATURE_EXPIRED"
DEVICE_ID_MISMATCH = "DEVICE_AUTH_DEVICE_ID_MISMATCH"
PUBLIC_KEY_INVALID = "DEVICE_AUTH_PUBLIC_KEY_INVALID"


@dataclass(frozen=True, slots=True)
class SignedDevice:
    """What the client sent in ``connect.params.device`` plus the fields it signed."""

    device_id: str
    public_key: str
    signature: str
    signed_at: int
    nonce: str | None
    client_id: str
    client_mode: str | None
    role: str
    scopes: tuple[str, ...]
    token: str | None
    platform: str | None
    device_family: str | None


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (raises ``ValueError`` on anything else)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding (how OpenClaw writes keys and signatures)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def device_id_of(raw_public_key: bytes) -> str:
    """``device.id`` for a raw Ed25519 public key: its sha256 in hex."""
    return hashlib.sha256(raw_public_key).hexdigest()


def payload_v3(d: SignedDevice) -> str:
    """The exact string a v3 client signs."""
    return "|".join(
        (
            "v3",
            d.device_id,
            d.client_id,
            d.client_mode or "",
            d.role,
            ",".join(d.scopes),
            str(d.signed_at),
            d.token or "",
            d.nonce or "",
            (d.platform or "").lower(),
            (d.device_family or "").lower(),
        )
    )


def payload_v2(d: SignedDevice) -> str:
    """The older v2 string (no platform / deviceFamily), still accepted."""
    parts = ("v2", d.device_id, d.client_id, d.client_mode or "", d.role, ",".join(d.scopes))
    return "|".join((*parts, str(d.signed_at), d.token or "", d.nonce or ""))


def _fail(code: str, message: str) -> GatewayError:
    return GatewayError(ErrorCode.INVALID_REQUEST, message, details={"code": code})


def public_key_of(d: SignedDevice) -> Ed25519PublicKey:
    """The device's key, checked against its id (raises the matching :class:`GatewayError`).

    ``cryptography`` is imported on the first device handshake, not at start: its OpenSSL
    bindings cost every gateway process ~7 MB of RSS, most never see a device."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = b64url_decode(d.public_key)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise _fail(PUBLIC_KEY_INVALID, "device public key is not a raw Ed25519 key") from None
    if device_id_of(raw) != d.device_id.lower():
        raise _fail(DEVICE_ID_MISMATCH, "device id does not match its public key")
    return key


def verify(d: SignedDevice, *, nonce: str, challenge_ts: int, now_ms: int) -> None:
    """Accept the device or raise ``INVALID_REQUEST`` with ``details.code`` saying why."""
    key = public_key_of(d)
    if d.nonce != nonce:
        raise _fail(NONCE_MISMATCH, "device nonce does not match this connection's challenge")
    if d.signed_at != challenge_ts or abs(now_ms - d.signed_at) > MAX_SKEW_MS:
        raise _fail(
            SIGNATURE_EXPIRED, "device signature expired (signedAt must echo the challenge)"
        )
    try:
        signature = b64url_decode(d.signature)
    except ValueError:
        raise _fail(SIGNATURE_INVALID, "device signature is not base64url") from None
    from cryptography.exceptions import InvalidSignature

    for payload in (payload_v3(d), payload_v2(d)):
        try:
            key.verify(signature, payload.encode("utf-8"))
            return
        except InvalidSignature:
            continue
    raise _fail(SIGNATURE_INVALID, "device signature invalid")
