"""The handshake's checks, in order: device signature, credentials (gateway secret or device
token), scopes, then pairing (the registered device authority, ``extensions.authority``).

Any failure raises ``GatewayError``; the connection answers it and closes 1008.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings

from gateway.delivery import extensions
from gateway.protocol.dialects.base import Hello, now_ms
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.security import auth, device, scopes
from gateway.security.webauth import BrowserCredentials


def is_loopback(ip: str | None) -> bool:
    """127.0.0.0/8 or ::1."""
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def browser_check(browser: BrowserCredentials | None, ip: str | None, has_device: bool) -> bool:
    """For a browser (its upgrade carried an ``Origin``) not on loopback: refuse it without a
    device identity when ``controlUi.pairingRequired`` and not ``allowInsecureAuth``
    (``NOT_PAIRED``, ``details.code: DEVICE_IDENTITY_REQUIRED``). Returns whether a browser
    device may be paired without an operator (``pairingRequired: false``)."""
    if browser is None or browser.origin is None or is_loopback(ip):
        return False
    ui = settings.WINGMAN.control_ui
    if not has_device and ui.pairing_required and not ui.allow_insecure_auth:
        raise GatewayError(
            ErrorCode.NOT_PAIRED,
            "this browser must pair a device identity to connect from another machine "
            "(controlUi.pairingRequired); set controlUi.allowInsecureAuth to allow token or "
            "session login without one",
            details={"code": "DEVICE_IDENTITY_REQUIRED"},
        )
    return not ui.pairing_required


def signed_device(hello: Hello) -> device.SignedDevice | None:
    """The device block with the fields its signature covers, or None when none was sent."""
    d, c = hello.device, hello.client
    if d is None:
        return None
    return device.SignedDevice(
        device_id=d.id,
        public_key=d.public_key,
        signature=d.signature,
        signed_at=d.signed_at,
        nonce=d.nonce,
        client_id=c.client_id,
        client_mode=c.mode,
        role=c.role,
        scopes=tuple(c.scopes),
        token=hello.token,
        platform=c.platform,
        device_family=c.device_family,
    )


async def admit(
    hello: Hello,
    *,
    conn_id: str,
    ip: str | None,
    browser: BrowserCredentials | None,
    challenge: dict[str, Any],
    dialect: str = "canonical",
) -> dict[str, Any]:
    """Check everything; fill ``hello.client``'s device id, credential and granted scopes.
    Returns the ``hello-ok.auth`` object. Only a canonical ``role: "node"`` connection (the
    OpenClaw node host) is a tool node, held to the ``node`` scope; other dialects' nodes
    (wingman-node swarm members) get the operator default as before."""
    client = hello.client
    signed = signed_device(hello)
    if signed is not None:
        device.verify(
            signed, nonce=challenge["nonce"], challenge_ts=challenge["ts"], now_ms=now_ms()
        )
        client.device_id = signed.device_id.lower()
    authority = extensions.authority()
    allowed: list[str] | None = None
    if signed is not None and hello.token and authority is not None:
        allowed = await authority.device_token_scopes(client.device_id or "", hello.token)
    if allowed is None:
        await auth.authenticate(token=hello.token, password=hello.password, ip=ip, browser=browser)
    else:
        client.credential = "device-token"
    unattended = browser_check(browser, ip, signed is not None)
    tool_node = client.role == "node" and dialect == "canonical"
    role = "node" if tool_node else "operator"
    requested = scopes.grant(role=role, requested=client.scopes, allowed=None)
    client.scopes = scopes.grant(role=role, requested=client.scopes, allowed=allowed)
    grant: dict[str, Any] = {"role": client.role, "scopes": client.scopes}
    if authority is not None:
        admission = extensions.Admission(
            conn_id=conn_id,
            client=client,
            ip=ip,
            tool_node=tool_node,
            unattended=unattended,
            public_key=signed.public_key if signed is not None else None,
            requested_scopes=tuple(requested),
        )
        grant.update(await authority.admit(admission))
    return grant
