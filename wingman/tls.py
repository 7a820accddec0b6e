"""TLS for the gateway and its clients: a self-signed certificate made on demand
(``gateway.tls.autoGenerate``) and clients pinning a certificate by its SHA-256 fingerprint.

Pinning: the client first reads the server's certificate (a handshake that checks nothing),
refuses it unless its SHA-256 is the pinned one, then connects with a context that trusts
exactly that certificate, so the real connection accepts no other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

CERT_NAME = "gateway-cert.pem"
KEY_NAME = "gateway-key.pem"
#: A generated certificate is valid this long.
VALID_DAYS = 825


class PinMismatch(ssl.SSLError):
    """The server's certificate is not the pinned one."""


def fingerprint(der: bytes) -> str:
    """``AB:CD:...``: the SHA-256 of a DER certificate, as browsers and openssl show it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalize(pin: str) -> str:
    """A fingerprint typed with or without colons, any case, ``sha256:`` prefix or not."""
    text = pin.strip().upper().removeprefix("SHA256:").replace(":", "")
    if len(text) != 64 or any(c not in "0123456789ABCDEF" for c in text):
        raise ValueError(f"not a SHA-256 fingerprint: {pin!r}")
    return ":".join(text[i : i + 2] for i in range(0, 64, 2))


def file_fingerprint(cert_path: Path) -> str:
    """The fingerprint of a PEM certificate file."""
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text(encoding="ascii"))
    return fingerprint(der)


def ensure_self_signed(state_dir: Path) -> tuple[Path, Path]:
    """(cert, key) in ``state_dir``, generated (self-signed, EC P-256) when absent."""
    cert_path, key_path = state_dir / CERT_NAME, state_dir / KEY_NAME
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"wingman {socket.gethostname()}")])
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName(socket.gethostname()),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The server side's context (for a clear error at start when the files are wrong)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


async def peer_certificate(host: str, port: int, *, seconds: float = 10.0) -> bytes:
    """The DER certificate a TLS server presents (nothing verified)."""
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=probe, server_hostname=host), seconds
    )
    try:
        return writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()


async def client_context(url: str, pin: str | None) -> ssl.SSLContext | None:
    """None for ws:// and http:// or without a pin; else a context trusting only the pinned
    certificate (``PinMismatch`` when the server presents another)."""
    parts = urlsplit(url)
    if parts.scheme not in ("wss", "https") or not pin:
        return None
    expected = normalize(pin)
    der = await peer_certificate(parts.hostname or "127.0.0.1", parts.port or 443)
    got = fingerprint(der)
    if got != expected:
        raise PinMismatch(f"certificate fingerprint mismatch: expected {expected}, got {got}")
    ctx = ssl.create_default_context(cadata=ssl.DER_cert_to_PEM_cert(der))
    ctx.check_hostname = False  # the pin names the certificate, whatever the host name
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a pinned leaf is its own anchor
    return ctx
