"""The network sections of the configuration: bind modes, TLS, the HTTP bridge and discovery
(mDNS, Tailscale), with their environment overrides; ``wingman/config.py`` assembles them
with the rest."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PORT = 18789
BindMode = Literal["loopback", "lan", "tailnet", "auto"]


class ConfigError(Exception):
    """A configuration value is invalid; the message names the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BridgeConfig(Strict):
    """The HTTP bridge (``/bridge/send``, ``/bridge/poll``, ``/bridge/sse``; gateway/bridge/)."""

    enabled: bool = True
    #: A ``/bridge/poll`` with nothing queued answers (empty) after this long at most.
    poll_timeout_ms: int = Field(default=30_000, ge=0, le=120_000, alias="pollTimeoutMs")
    #: A session no request touched for this long is closed and its presence removed.
    session_idle_ms: int = Field(default=90_000, ge=1_000, alias="sessionIdleMs")
    #: Browser origins allowed to call the bridge from another origin (CORS); ``*`` any.
    cors_origins: list[str] = Field(default_factory=list, alias="corsOrigins")


class TlsConfig(Strict):
    """``gateway.tls``: serve wss:// and https:// (gateway and Control UI ports)."""

    enabled: bool = False
    cert_path: str | None = Field(default=None, alias="certPath")
    key_path: str | None = Field(default=None, alias="keyPath")
    #: Make a self-signed pair in the state dir when there is none (fingerprint printed).
    auto_generate: bool = Field(default=False, alias="autoGenerate")

    @model_validator(mode="after")
    def _check(self) -> TlsConfig:
        if self.enabled and not self.auto_generate and not (self.cert_path and self.key_path):
            raise ValueError("TLS needs certPath and keyPath, or autoGenerate: true")
        return self

    @property
    def on(self) -> bool:
        """TLS is served (``enabled``, or certificate files / ``autoGenerate`` given)."""
        return self.enabled or self.auto_generate or bool(self.cert_path and self.key_path)


#: Where tailscaled's LocalAPI socket is on Linux (``discovery.tailscale.socket``).
TAILSCALED_SOCKET = "/var/run/tailscale/tailscaled.sock"
TAILSCALE_API_URL = "https://api.tailscale.com"


class TailscaleDiscoveryConfig(Strict):
    """``discovery.tailscale``: which peers are gateways and how to ask Tailscale."""

    tags: list[str] = Field(default_factory=list)
    socket: str = TAILSCALED_SOCKET
    tailnet: str = "-"
    api_key: str | None = Field(default=None, alias="apiKey")
    api_url: str = Field(default=TAILSCALE_API_URL, alias="apiUrl")
    #: The gateway port probed on each peer.
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)


class DiscoveryConfig(Strict):
    """``discovery`` (seed 001): announce this gateway over mDNS when enabled."""

    enabled: bool = False
    method: Literal["mdns", "tailscale"] = "mdns"
    name: str | None = None
    tailscale: TailscaleDiscoveryConfig = Field(default_factory=TailscaleDiscoveryConfig)


def bind_host(env: dict[str, str], mode: str) -> str:
    """The interface ``gateway.bind`` (or ``WINGMAN_BIND``) names."""
    from wingman import tailnet

    mode = env.get("WINGMAN_BIND") or mode
    if mode == "lan":
        return "0.0.0.0"  # noqa: S104 - what "lan" means
    if mode in ("tailnet", "auto"):
        address = tailnet.address(env)
        if address is not None:
            return address
        if mode == "tailnet":
            raise ConfigError(
                "gateway.bind: 'tailnet' needs Tailscale up on this machine (no address from "
                "tailscaled's LocalAPI or `tailscale ip`); start it with `tailscale up`, or "
                "use bind 'loopback' / 'lan' or --host"
            )
        return "127.0.0.1"
    if mode != "loopback":
        raise ConfigError(f"gateway.bind: expected loopback, lan, tailnet or auto, got {mode!r}")
    return "127.0.0.1"


def is_loopback(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def error_text(exc: ValidationError, prefix: str) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    key = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    return f"{key}: {first['msg']}"


def discovery_from_env(env: dict[str, str], cfg: DiscoveryConfig) -> DiscoveryConfig:
    """``discovery`` with ``WINGMAN_DISCOVERY`` (``--discovery``: mdns | none) and the
    Tailscale variables (``WINGMAN_TAILSCALE_SOCKET``, ``TAILSCALE_API_KEY``,
    ``TAILSCALE_TAILNET``, ``WINGMAN_TAILSCALE_API_URL``) applied."""
    method = env.get("WINGMAN_DISCOVERY", "").strip().lower()
    if method and method not in ("mdns", "none"):
        raise ConfigError(f"WINGMAN_DISCOVERY: expected mdns or none, got {method!r}")
    if method:
        cfg = cfg.model_copy(update={"enabled": method == "mdns", "method": "mdns"})
    ts = cfg.tailscale
    update = {
        field: env[name]
        for field, name in (
            ("socket", "WINGMAN_TAILSCALE_SOCKET"),
            ("api_key", "TAILSCALE_API_KEY"),
            ("tailnet", "TAILSCALE_TAILNET"),
            ("api_url", "WINGMAN_TAILSCALE_API_URL"),
        )
        if env.get(name)
    }
    return cfg.model_copy(update={"tailscale": ts.model_copy(update=update)})


def bridge_from_env(env: dict[str, str], cfg: BridgeConfig) -> BridgeConfig:
    """``bridge`` with ``WINGMAN_BRIDGE_POLL_TIMEOUT_MS`` / ``WINGMAN_BRIDGE_IDLE_MS`` applied."""
    update: dict[str, Any] = {}
    for field, name in (
        ("pollTimeoutMs", "WINGMAN_BRIDGE_POLL_TIMEOUT_MS"),
        ("sessionIdleMs", "WINGMAN_BRIDGE_IDLE_MS"),
    ):
        value = env_int(env, name)
        if value is not None:
            update[field] = value
    try:
        return BridgeConfig.model_validate({**cfg.model_dump(by_alias=True), **update})
    except ValidationError as exc:
        raise ConfigError(error_text(exc, "gateway.bridge")) from exc


def env_int(env: dict[str, str], name: str) -> int | None:
    value = env.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from exc
