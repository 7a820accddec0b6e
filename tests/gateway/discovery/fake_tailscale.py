"""Fakes of Tailscale at its network edge, speaking its real JSON:

- :class:`FakeTailscaled`: tailscaled's LocalAPI on a unix socket — ``GET /localapi/v0/status``
  (``ipnstate.Status``: BackendState, Self, Peer keyed by node key, each a ``PeerStatus``
  with HostName, DNSName, TailscaleIPs, Tags, Online, ...) and ``GET /localapi/v0/whois``
  (``apitype.WhoIsResponse``: Node, UserProfile, CapMap) for the addresses it knows.
- :class:`FakeTailscaleApi`: ``GET /api/v2/tailnet/<tailnet>/devices`` on 127.0.0.1 (the
  v2 devices list: addresses, name, hostname, os, tags, connectedToControl, lastSeen, ...),
  answering 401 to any other bearer key.

Each records the requests it answered.
"""

from __future__ import annotations

import json
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TAILNET_SUFFIX = "tail4f3a2.ts.net"


def peer_status(
    host: str, ips: list[str], *, online: bool, tags: list[str] | None = None, os: str = "linux"
) -> dict[str, Any]:
    """One ``ipnstate.PeerStatus`` as tailscaled serializes it."""
    status: dict[str, Any] = {
        "ID": f"n{abs(hash(host)) % 10**10}CNTRL",
        "PublicKey": f"nodekey:{abs(hash(host)):064x}"[:72],
        "HostName": host,
        "DNSName": f"{host}.{TAILNET_SUFFIX}.",
        "OS": os,
        "UserID": 1234567890,
        "TailscaleIPs": ips,
        "AllowedIPs": [f"{ip}/32" if ":" not in ip else f"{ip}/128" for ip in ips],
        "Addrs": None,
        "CurAddr": "",
        "Relay": "fra",
        "RxBytes": 0,
        "TxBytes": 0,
        "Created": "2026-01-10T09:00:00.000000000Z",
        "LastWrite": "0001-01-01T00:00:00Z",
        "LastSeen": "2026-11-30T05:00:00Z",
        "LastHandshake": "0001-01-01T00:00:00Z",
        "Online": online,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": False,
        "PeerAPIURL": [f"http://{ips[0]}:41641"],
        "InNetworkMap": True,
        "InMagicSock": True,
        "InEngine": False,
    }
    if tags:
        status["Tags"] = tags  # omitted when empty, as tailscaled does
    return status


def status_json(peers: list[dict[str, Any]], *, backend: str = "Running") -> dict[str, Any]:
    """A whole ``ipnstate.Status``."""
    me = peer_status("this-laptop", ["100.64.0.1", "fd7a:115c:a1e0::1"], online=True)
    return {
        "Version": "1.76.6-t5d3b1a2c3-g0a1b2c3d4",
        "TUN": True,
        "BackendState": backend,
        "HaveNodeKey": True,
        "AuthURL": "",
        "TailscaleIPs": ["100.64.0.1", "fd7a:115c:a1e0::1"],
        "Self": me,
        "Health": [],
        "MagicDNSSuffix": TAILNET_SUFFIX,
        "CurrentTailnet": {
            "Name": "alice@example.com",
            "MagicDNSSuffix": TAILNET_SUFFIX,
            "MagicDNSEnabled": True,
        },
        "CertDomains": None,
        "Peer": {p["PublicKey"]: p for p in peers},
        "User": {
            "1234567890": {
                "ID": 1234567890,
                "LoginName": "alice@example.com",
                "DisplayName": "Alice",
                "ProfilePicURL": "",
            }
        },
        "ClientVersion": None,
    }


def whois_json(ip: str, login: str, display: str) -> dict[str, Any]:
    """``apitype.WhoIsResponse`` for a node at ``ip``."""
    return {
        "Node": {
            "ID": 987654321,
            "StableID": "nXyZ123CNTRL",
            "Name": f"phone.{TAILNET_SUFFIX}.",
            "User": 1234567890,
            "Addresses": [f"{ip}/32"],
            "Hostinfo": {"OS": "iOS", "Hostname": "phone"},
            "Online": True,
        },
        "UserProfile": {
            "ID": 1234567890,
            "LoginName": login,
            "DisplayName": display,
            "ProfilePicURL": "https://example.com/a.png",
        },
        "CapMap": {},
    }


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.requests.append((self.path, dict(self.headers)))
        code, body = owner.answer(self)
        self._send(code, body)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeTailscaled:
    """tailscaled's LocalAPI on a unix socket."""

    def __init__(self, socket_path: Path, status: dict[str, Any]) -> None:
        self.path = socket_path
        self.status = status
        self.whois: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

        class Handler(_Handler):
            def address_string(self) -> str:
                return "unix"

        self.server = _UnixServer(str(socket_path), Handler)
        self.server.owner = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(handler.path)
        if handler.headers.get("Host") != "local-tailscaled.sock":
            return 403, b"bad Host\n"
        if url.path == "/localapi/v0/status":
            return 200, self.status
        if url.path == "/localapi/v0/whois":
            addr = urllib.parse.parse_qs(url.query).get("addr", [""])[0]
            ip = addr.rsplit(":", 1)[0].strip("[]")
            if ip in self.whois:
                return 200, self.whois[ip]
            return 404, b"no match for IP:port\n"
        return 404, b"not found\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)


class FakeTailscaleApi:
    """The Tailscale v2 API's devices list on 127.0.0.1."""

    def __init__(self, devices: list[dict[str, Any]], *, key: str, tailnet: str = "-") -> None:
        self.devices = devices
        self.key = key
        self.tailnet = tailnet
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        if handler.headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {"message": "API token invalid"}
        if handler.path != f"/api/v2/tailnet/{urllib.parse.quote(self.tailnet)}/devices":
            return 404, {"message": "not found"}
        return 200, {"devices": self.devices}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def api_device(
    host: str, ips: list[str], *, online: bool, tags: list[str] | None = None
) -> dict[str, Any]:
    """One device of ``GET /api/v2/tailnet/-/devices``."""
    return {
        "addresses": ips,
        "id": f"{abs(hash(host)) % 10**16}",
        "nodeId": f"n{abs(hash(host)) % 10**10}CNTRL",
        "user": "alice@example.com",
        "name": f"{host}.{TAILNET_SUFFIX}",
        "hostname": host,
        "clientVersion": "1.76.6-t5d3b1a2c3-g0a1b2c3d4",
        "updateAvailable": False,
        "os": "linux",
        "created": "2026-01-10T09:00:00Z",
        "lastSeen": "2026-11-30T05:00:00Z",
        "keyExpiryDisabled": True,
        "expires": "0001-01-01T00:00:00Z",
        "authorized": True,
        "isExternal": False,
        "machineKey": "mkey:" + "a" * 64,
        "nodeKey": "nodekey:" + "b" * 64,
        "blocksIncomingConnections": False,
        "enabledRoutes": [],
        "advertisedRoutes": [],
        "clientConnectivity": {"endpoints": [], "latency": {}},
        "tags": tags or [],
        "tailnetLockError": "",
        "tailnetLockKey": "nlpub:" + "c" * 64,
        "connectedToControl": online,
    }
