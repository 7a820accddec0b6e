"""A stand-in for the local tailscaled at its network edge: the LocalAPI's
``/localapi/v0/status`` JSON (the real shape, trimmed) on a unix socket, on its own thread."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any


def status(ips: list[str], state: str = "Running") -> dict[str, Any]:
    return {
        "Version": "1.76.1-t1234",
        "BackendState": state,
        "TailscaleIPs": ips,
        "Self": {
            "ID": "nSELF",
            "HostName": "desk",
            "DNSName": "desk.tail1234.ts.net.",
            "OS": "linux",
            "TailscaleIPs": ips,
            "Online": True,
        },
        "MagicDNSSuffix": "tail1234.ts.net",
        "Peer": {},
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeTailscaled:
    """``with FakeTailscaled(path, status(...)) as fake:``; ``fake.requests`` lists paths."""

    def __init__(self, path: Path, body: dict[str, Any]) -> None:
        self.path = path
        self.body = body
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.path != "/localapi/v0/status":
                    self.send_error(404)
                    return
                data = json.dumps(fake.body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "unix"

        self.server = _Server(str(path), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTailscaled:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
