"""Gateway configuration: defaults < ``wingman.config.json`` < environment < CLI flags.

The CLI turns its flags into ``WINGMAN_*`` environment variables before Django starts, so
this module only has to merge the file with the environment. ``settings.py`` calls
:func:`load` once; everything else reads ``django.conf.settings.WINGMAN``.

A bad value anywhere raises :class:`ConfigError` whose message names the offending key,
e.g. ``gateway.port: Input should be less than or equal to 65535``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wingman.config_net import (  # noqa: F401 - the net sections, re-exported
    DEFAULT_PORT,
    TAILSCALE_API_URL,
    TAILSCALED_SOCKET,
    BindMode,
    BridgeConfig,
    ConfigError,
    DiscoveryConfig,
    TailscaleDiscoveryConfig,
    TlsConfig,
    bind_host,
    bridge_from_env,
    discovery_from_env,
    env_int,
    error_text,
    is_loopback,
)
from wingman.config_net import Strict as _Strict

DEFAULT_CONTROL_UI_PORT = 18790
CONFIG_FILENAME = "wingman.config.json"

AuthMode = Literal["token", "password", "none"]
#: The ASGI server the gateway runs on (gateway/server/serve.py); the first is the default.
AsgiServer = Literal["uvicorn", "daphne"]
DEFAULT_ASGI_SERVER: AsgiServer = "uvicorn"


class AuthConfig(_Strict):
    mode: AuthMode | None = None
    token: str | None = None
    password: str | None = None
    allow_tailscale: bool = Field(default=False, alias="allowTailscale")


class ControlUiConfig(_Strict):
    enabled: bool = True
    port: int = Field(default=DEFAULT_CONTROL_UI_PORT, ge=0, le=65535)
    pairing_required: bool = Field(default=True, alias="pairingRequired")
    allow_insecure_auth: bool = Field(default=False, alias="allowInsecureAuth")


class PolicyConfig(_Strict):
    """Protocol limits advertised in ``hello-ok.policy`` and enforced by the gateway."""

    max_payload: int = Field(default=512 * 1024, ge=1024, alias="maxPayload")
    max_buffered_bytes: int = Field(default=1536 * 1024, ge=1024, alias="maxBufferedBytes")
    tick_interval_ms: int = Field(default=30_000, ge=100, alias="tickIntervalMs")
    handshake_timeout_ms: int = Field(default=10_000, ge=100, alias="handshakeTimeoutMs")
    ping_interval_ms: int = Field(default=20_000, ge=100, alias="pingIntervalMs")
    ping_timeout_ms: int = Field(default=30_000, ge=100, alias="pingTimeoutMs")
    rate_limit_per_minute: int = Field(default=100, ge=1, alias="rateLimitPerMinute")
    presence_tick_ms: int = Field(default=5_000, ge=100, alias="presenceTickMs")
    #: 20 failed auth attempts from one IP lock it out for this long (gateway/security/auth.py).
    auth_lockout_seconds: int = Field(default=60, ge=1, alias="authLockoutSeconds")
    #: Events that follow a write to a socket within this many µs leave together at the
    #: end of the window (gateway/ws/writer.py; replies are never held); 0: one ``send``
    #: per frame.
    write_coalesce_us: int = Field(default=500, ge=0, le=1_000_000, alias="writeCoalesceUs")


class GatewayConfig(_Strict):
    """The ``gateway`` section of ``wingman.config.json`` (seed 001 format plus ``policy``)."""

    name: str | None = None
    #: An explicit interface (wins over ``bind``, like ``--host``).
    host: str | None = None
    #: loopback (default) | lan (all interfaces) | tailnet (the Tailscale address only) |
    #: auto (tailnet when Tailscale is up, else loopback).
    bind: BindMode = "loopback"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    asgi_server: AsgiServer | None = Field(default=None, alias="asgiServer")
    state_dir: str | None = Field(default=None, alias="stateDir")
    fs_roots: list[str] = Field(default_factory=list, alias="fsRoots")
    auth: AuthConfig = Field(default_factory=AuthConfig)
    control_ui: ControlUiConfig = Field(default_factory=ControlUiConfig, alias="controlUi")
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    bridge: BridgeConfig = Field(default_factory=BridgeConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)


class ConfigFile(BaseModel):
    """The whole file. Sections other than ``gateway`` and ``discovery`` belong to features."""

    model_config = ConfigDict(extra="allow")

    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)


class ResolvedConfig(_Strict):
    """The effective gateway configuration after merging file, environment and flags."""

    config_path: Path | None
    state_dir: Path
    name: str
    host: str
    bind: BindMode = "loopback"
    port: int = Field(ge=0, le=65535)
    asgi_server: AsgiServer = DEFAULT_ASGI_SERVER
    auth_mode: AuthMode
    token: str | None
    password: str | None
    allow_tailscale: bool = False
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    fs_roots: list[Path]
    control_ui: ControlUiConfig
    policy: PolicyConfig
    bridge: BridgeConfig = Field(default_factory=BridgeConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    raw: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_auth(self) -> ResolvedConfig:
        if self.auth_mode == "token" and not self.token:
            raise ValueError(
                "gateway.auth.mode: 'token' needs a token "
                "(WINGMAN_GATEWAY_TOKEN, --token or gateway.auth.token)"
            )
        if self.auth_mode == "password" and not self.password:
            raise ValueError(
                "gateway.auth.mode: 'password' needs a password "
                "(WINGMAN_GATEWAY_PASSWORD, --password or gateway.auth.password)"
            )
        if self.auth_mode == "none" and not is_loopback(self.host):
            raise ValueError(
                f"gateway.auth.mode: 'none' is only allowed on a loopback host, not {self.host!r}; "
                "set a token or password"
            )
        return self


def read_file(path: Path) -> ConfigFile:
    """Parse and validate one config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    try:
        parsed = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {error_text(exc, '')}") from exc
    return parsed


def _control_ui(env: dict[str, str], cfg: ControlUiConfig) -> ControlUiConfig:
    """``controlUi`` with ``WINGMAN_CONTROL_UI_PORT`` / ``WINGMAN_CONTROL_UI`` applied."""
    update: dict[str, Any] = {}
    port = env_int(env, "WINGMAN_CONTROL_UI_PORT")
    if port is not None:
        update["port"] = port
    enabled = env.get("WINGMAN_CONTROL_UI", "").strip().lower()
    if enabled:
        if enabled not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ConfigError(f"WINGMAN_CONTROL_UI: expected true or false, got {enabled!r}")
        update["enabled"] = enabled in ("1", "true", "yes", "on")
    merged = cfg.model_copy(update=update)
    try:
        return ControlUiConfig.model_validate(merged.model_dump(by_alias=True))
    except ValidationError as exc:
        raise ConfigError(error_text(exc, "gateway.controlUi")) from exc


def log_level(value: str) -> str:
    """``WINGMAN_LOG_LEVEL`` in any case (``debug``, ``INFO``) as logging's level name."""
    name = value.strip().upper()
    if name not in logging.getLevelNamesMapping():
        raise ConfigError(
            f"WINGMAN_LOG_LEVEL: expected debug, info, warning, error or critical, got {value!r}"
        )
    return name


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state dir (and its ``logs``) or say in one line why it cannot be used."""
    where = f"state dir {state_dir} (WINGMAN_STATE_DIR / gateway.stateDir)"
    if state_dir.exists() and not state_dir.is_dir():
        raise ConfigError(f"{where}: not a directory")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "logs").mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create it: {exc.strerror or exc}") from exc
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: not writable")


def default_state_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("WINGMAN_STATE_DIR") or "~/.wingman").expanduser()


def load(env: dict[str, str] | None = None) -> ResolvedConfig:
    """Resolve the effective configuration from ``WINGMAN_CONFIG`` / state dir and ``env``."""
    env = dict(os.environ if env is None else env)
    config_path = _config_path(env)
    file_cfg = read_file(config_path) if config_path else ConfigFile()
    gw = file_cfg.gateway
    state_dir = (
        Path(env["WINGMAN_STATE_DIR"]).expanduser()
        if env.get("WINGMAN_STATE_DIR")
        else Path(gw.state_dir or "~/.wingman").expanduser()
    )
    token = env.get("WINGMAN_GATEWAY_TOKEN") or gw.auth.token
    password = env.get("WINGMAN_GATEWAY_PASSWORD") or gw.auth.password
    mode = env.get("WINGMAN_AUTH_MODE") or gw.auth.mode
    if mode is None:
        mode = "token" if token else "password" if password else "none"
    port = env_int(env, "WINGMAN_PORT")
    fs_roots = [Path(p).expanduser() for p in gw.fs_roots] or [state_dir / "outputs"]
    try:
        return ResolvedConfig(
            config_path=config_path,
            state_dir=state_dir,
            name=env.get("WINGMAN_GATEWAY_NAME") or gw.name or "wingman-gateway",
            host=env.get("WINGMAN_HOST") or gw.host or bind_host(env, gw.bind),
            bind=env.get("WINGMAN_BIND") or gw.bind,
            port=gw.port if port is None else port,
            asgi_server=env.get("WINGMAN_ASGI_SERVER") or gw.asgi_server or DEFAULT_ASGI_SERVER,
            auth_mode=mode,  # type: ignore[arg-type]
            token=token,
            password=password,
            allow_tailscale=gw.auth.allow_tailscale,
            discovery=discovery_from_env(env, file_cfg.discovery),
            fs_roots=fs_roots,
            control_ui=_control_ui(env, gw.control_ui),
            policy=_policy(env, gw.policy),
            bridge=bridge_from_env(env, gw.bridge),
            tls=gw.tls,
            raw=file_cfg.model_dump(by_alias=True, exclude={"gateway", "discovery"}),
        )
    except ValidationError as exc:
        raise ConfigError(_resolved_error(exc)) from exc


def _config_path(env: dict[str, str]) -> Path | None:
    """``WINGMAN_CONFIG`` (must exist), else the state dir's config file if there is one."""
    explicit = env.get("WINGMAN_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"--config: no such file: {path}")
        return path
    candidate = default_state_dir(env) / CONFIG_FILENAME
    return candidate if candidate.is_file() else None


#: Policy fields that the environment may override.
_POLICY_ENV = {
    "rate_limit_per_minute": "WINGMAN_RATE_LIMIT",
    "tick_interval_ms": "WINGMAN_TICK_INTERVAL_MS",
    "handshake_timeout_ms": "WINGMAN_HANDSHAKE_TIMEOUT_MS",
    "ping_interval_ms": "WINGMAN_PING_INTERVAL_MS",
    "ping_timeout_ms": "WINGMAN_PING_TIMEOUT_MS",
    "max_payload": "WINGMAN_MAX_PAYLOAD",
    "max_buffered_bytes": "WINGMAN_MAX_BUFFERED_BYTES",
    "presence_tick_ms": "WINGMAN_PRESENCE_TICK_MS",
    "write_coalesce_us": "WINGMAN_WRITE_COALESCE_US",
    "auth_lockout_seconds": "WINGMAN_AUTH_LOCKOUT_SECONDS",
}


def _policy(env: dict[str, str], policy: PolicyConfig) -> PolicyConfig:
    """The file's policy with the environment's overrides, validated."""
    overrides = {field: env_int(env, name) for field, name in _POLICY_ENV.items()}
    policy = policy.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    try:
        PolicyConfig.model_validate(policy.model_dump(by_alias=True))
    except ValidationError as exc:
        raise ConfigError(error_text(exc, "gateway.policy")) from exc
    return policy


def _resolved_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = first["loc"][0] if first["loc"] else ""
    key = {
        "auth_mode": "gateway.auth.mode (WINGMAN_AUTH_MODE)",
        "port": "gateway.port (WINGMAN_PORT)",
        "asgi_server": "gateway.asgiServer (WINGMAN_ASGI_SERVER)",
    }.get(str(loc), str(loc))
    msg = first["msg"].removeprefix("Value error, ")
    return msg if msg.startswith("gateway.") else f"{key}: {msg}"
