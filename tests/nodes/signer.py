"""A test device that signs like the OpenClaw node host (``buildDeviceAuthPayloadV3``)."""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.security.device import b64url_encode, device_id_of

NODE_COMMANDS = ["system.run", "system.run.prepare", "system.which", "system.execApprovals.get"]


class TestDevice:
    """An Ed25519 identity; :meth:`connect` builds a signed ``connect`` frame."""

    __test__ = False

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = b64url_encode(raw)
        self.device_id = device_id_of(raw)

    def payload(self, *, version: str = "v3", **f: Any) -> str:
        """The string to sign (v3, or v2 without platform/deviceFamily)."""
        parts = [version, self.device_id, f["client_id"], f["mode"], f["role"]]
        parts += [",".join(f["scopes"]), str(f["signed_at"]), f["token"] or "", f["nonce"]]
        if version == "v3":
            parts += [f["platform"].lower(), f["family"].lower()]
        return "|".join(parts)

    def connect(
        self,
        challenge: dict[str, Any],
        *,
        token: str | None = "secret",  # noqa: S107 (the test gateway token)
        role: str = "node",
        scopes: list[str] | None = None,
        commands: list[str] | None = None,
        version: str = "v3",
        tamper: dict[str, Any] | None = None,
        display_name: str = "test-node",
    ) -> dict[str, Any]:
        """A signed connect frame answering ``challenge``; ``tamper`` overrides device fields
        after signing."""
        scopes = list(scopes or [])
        mode = "node" if role == "node" else "cli"
        client_id = "node-host" if role == "node" else "cli"
        fields = {
            "client_id": client_id,
            "mode": mode,
            "role": role,
            "scopes": scopes,
            "signed_at": challenge["ts"],
            "token": token,
            "nonce": challenge["nonce"],
            "platform": "linux",
            "family": "Linux",
        }
        signature = self.key.sign(self.payload(version=version, **fields).encode())
        device = {
            "id": self.device_id,
            "publicKey": self.public_key,
            "signature": b64url_encode(signature),
            "signedAt": challenge["ts"],
            "nonce": challenge["nonce"],
            **(tamper or {}),
        }
        params: dict[str, Any] = {
            "minProtocol": 4,
            "maxProtocol": 4,
            "client": {
                "id": client_id,
                "displayName": display_name,
                "version": "2026.9.6",
                "platform": "linux",
                "deviceFamily": "Linux",
                "mode": mode,
                "instanceId": str(uuid.uuid4()),
            },
            "caps": ["system"] if role == "node" else [],
            "role": role,
            "scopes": scopes,
            "device": device,
        }
        if role == "node":
            params["commands"] = list(NODE_COMMANDS if commands is None else commands)
            params["pathEnv"] = "/usr/bin:/bin"
        if token is not None:
            params["auth"] = {"token": token}
        return {"type": "req", "id": f"1:{uuid.uuid4()}", "method": "connect", "params": params}


def invoke_result(req: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The node's ``node.invoke.result`` request answering the ``node.invoke.request``
    payload ``req`` with ``fields`` (``ok``, ``payloadJSON`` or ``error``)."""
    params = {"id": req["id"], "nodeId": req["nodeId"], **fields}
    return {"type": "req", "id": f"r-{req['id']}", "method": "node.invoke.result", "params": params}
