"""Tailscale discovery: the gateways among the tailnet's peers.

- :func:`discover` asks the local tailscaled's LocalAPI (``GET /localapi/v0/status`` on its
  unix socket; no API key) for the peers, or — when the daemon does not answer — the
  Tailscale HTTP API (``GET /api/v2/tailnet/<tailnet>/devices`` with an API key); keeps the
  online peers carrying the configured tags; and probes each one's ``/health`` on the
  gateway port (in parallel, bounded).

The LocalAPI client is gateway/security/tailscale.py's (which also verifies
``gateway.auth.allowTailscale`` identities with it).
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.security.tailscale import localapi_get

#: A device the API last saw this long ago counts as offline (when it has no
#: ``connectedToControl``).
API_ONLINE_WINDOW = timedelta(minutes=5)
PROBE_WORKERS = 16


class TailscaleUnavailable(Exception):
    """Neither tailscaled nor the Tailscale API could be asked (the message says why)."""


@dataclass(frozen=True)
class Peer:
    """One tailnet device, from either source."""

    name: str
    dns_name: str
    ips: list[str]
    online: bool
    tags: list[str]
    os: str = ""

    @property
    def ip(self) -> str:
        v4 = [ip for ip in self.ips if ":" not in ip]
        return (v4 or self.ips or [""])[0]


@dataclass(frozen=True)
class TailnetGateway:
    """A peer whose /health answered on the gateway port."""

    name: str
    ip: str
    dns_name: str
    port: int
    url: str
    magic_url: str
    status: str
    version: str
    os: str
    tags: list[str]

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class DiscoveryResult:
    source: str
    candidates: list[Peer] = field(default_factory=list)
    gateways: list[TailnetGateway] = field(default_factory=list)


def _dns(name: str | None) -> str:
    return (name or "").rstrip(".")


def local_peers(socket_path: str, timeout: float) -> list[Peer]:
    """The peers in tailscaled's ``ipnstate.Status`` (the daemon must be Running)."""
    status = localapi_get(socket_path, "/localapi/v0/status", timeout)
    state = status.get("BackendState")
    if state != "Running":
        raise OSError(f"tailscaled is not connected (BackendState {state!r})")
    return [
        Peer(
            name=p.get("HostName") or _dns(p.get("DNSName")).split(".")[0],
            dns_name=_dns(p.get("DNSName")),
            ips=list(p.get("TailscaleIPs") or []),
            online=bool(p.get("Online")),
            tags=list(p.get("Tags") or []),
            os=p.get("OS") or "",
        )
        for p in (status.get("Peer") or {}).values()
    ]


def _api_online(device: dict) -> bool:
    if "connectedToControl" in device:
        return bool(device["connectedToControl"])
    with contextlib.suppress(KeyError, TypeError, ValueError):
        seen = datetime.fromisoformat(device["lastSeen"].replace("Z", "+00:00"))
        return datetime.now(UTC) - seen < API_ONLINE_WINDOW
    return False


def api_peers(*, api_url: str, tailnet: str, api_key: str, timeout: float) -> list[Peer]:
    """The tailnet's devices from the Tailscale API (v2)."""
    url = f"{api_url.rstrip('/')}/api/v2/tailnet/{urllib.parse.quote(tailnet)}/devices"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - config URL
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise TailscaleUnavailable(
            f"the Tailscale API answered {exc.code} for tailnet {tailnet!r}"
            + (" (API key refused)" if exc.code in (401, 403) else "")
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TailscaleUnavailable(f"cannot reach the Tailscale API at {api_url}: {exc}") from exc
    return [
        Peer(
            name=d.get("hostname") or _dns(d.get("name")).split(".")[0],
            dns_name=_dns(d.get("name")),
            ips=list(d.get("addresses") or []),
            online=_api_online(d),
            tags=list(d.get("tags") or []),
            os=d.get("os") or "",
        )
        for d in data.get("devices") or []
    ]


def wanted(peer: Peer, tags: list[str]) -> bool:
    """Online and carrying every configured tag (``gw`` and ``tag:gw`` are the same)."""
    need = {t if t.startswith("tag:") else f"tag:{t}" for t in tags}
    return peer.online and need <= set(peer.tags)


def _probe(peer: Peer, port: int, timeout: float) -> TailnetGateway | None:
    host = peer.ip
    shown = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{shown}:{port}/health", timeout=timeout) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:  # 503: a degraded gateway is still a gateway
        try:
            body = json.loads(exc.read())
        except ValueError:
            return None
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(body, dict) or "status" not in body:
        return None
    return TailnetGateway(
        name=peer.name,
        ip=host,
        dns_name=peer.dns_name,
        port=port,
        url=f"ws://{shown}:{port}/ws",
        magic_url=f"ws://{peer.dns_name}:{port}/ws" if peer.dns_name else "",
        status=str(body.get("status")),
        version=str(body.get("version") or ""),
        os=peer.os,
        tags=peer.tags,
    )


def discover(cfg, *, timeout: float) -> DiscoveryResult:
    """Gateways on the tailnet (``cfg``: ``discovery.tailscale``); see the module docstring."""
    try:
        peers = local_peers(cfg.socket, timeout=min(timeout, 3.0))
        result = DiscoveryResult(source=f"local tailscaled at {cfg.socket}")
    except (OSError, ValueError) as exc:
        if not cfg.api_key:
            raise TailscaleUnavailable(
                f"no tailscaled answers at {cfg.socket} ({exc}) and no Tailscale API key is "
                "set (TAILSCALE_API_KEY or discovery.tailscale.apiKey)"
            ) from exc
        peers = api_peers(
            api_url=cfg.api_url, tailnet=cfg.tailnet, api_key=cfg.api_key, timeout=timeout
        )
        result = DiscoveryResult(source=f"Tailscale API (tailscaled: {exc})")
    result.candidates = [p for p in peers if wanted(p, cfg.tags) and p.ip]
    probe_timeout = max(0.2, min(2.0, timeout))
    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        probed = pool.map(lambda p: _probe(p, cfg.port, probe_timeout), result.candidates)
        result.gateways = sorted((g for g in probed if g), key=lambda g: g.name)
    return result
