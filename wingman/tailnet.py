"""This machine's Tailscale address, for ``gateway.bind: tailnet|auto``: asked of the local
tailscaled's LocalAPI (``/localapi/v0/status`` over its unix socket; no API key), else of
``tailscale ip -4``. None when Tailscale is not installed, not running or not logged in."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
from typing import Any

#: Where tailscaled listens on Linux (``WINGMAN_TAILSCALE_SOCKET`` overrides it).
DEFAULT_SOCKET = "/var/run/tailscale/tailscaled.sock"
TIMEOUT = 2.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("local-tailscaled.sock", timeout=TIMEOUT)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(self.path)
        self.sock = sock


def local_status(env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The LocalAPI's status JSON, or None when the daemon cannot be reached."""
    path = (env or os.environ).get("WINGMAN_TAILSCALE_SOCKET") or DEFAULT_SOCKET
    if not os.path.exists(path):
        return None
    conn = _UnixConnection(path)
    try:
        conn.request("GET", "/localapi/v0/status", headers={"Host": "local-tailscaled.sock"})
        response = conn.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read())
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def _ipv4(addresses: list[str]) -> str | None:
    return next((a for a in addresses if ":" not in a), addresses[0] if addresses else None)


def address(env: dict[str, str] | None = None) -> str | None:
    """This node's Tailscale IPv4 (else IPv6) address when Tailscale is up, else None."""
    status = local_status(env)
    if status is not None:
        if status.get("BackendState") != "Running":
            return None
        return _ipv4((status.get("Self") or {}).get("TailscaleIPs") or [])
    if (env or os.environ).get("WINGMAN_TAILSCALE_SOCKET"):
        return None  # a socket was named: do not ask another daemon
    binary = shutil.which("tailscale")
    if binary is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - a fixed binary, no shell
            [binary, "ip", "-4"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    return lines[0] if done.returncode == 0 and lines else None
