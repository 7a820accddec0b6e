"""Handshake models: canonical ``connect`` params, legacy ``hello`` and ``hello-ok``.

Adding a snapshot field means: add it to :class:`Snapshot`, fill it in
``gateway/services/handshake.py`` and keep it current with an event (style.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.protocol.base import Frame


class ClientInfo(Frame):
    """``connect.params.client``; ``id`` and ``mode`` are free strings (real clients vary)."""

    id: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    platform: str | None = Field(default=None, max_length=64)
    device_family: str | None = Field(default=None, alias="deviceFamily", max_length=64)
    model_identifier: str | None = Field(default=None, alias="modelIdentifier", max_length=128)
    mode: str | None = Field(default=None, max_length=64)
    instance_id: str | None = Field(default=None, alias="instanceId", max_length=128)
    display_name: str | None = Field(default=None, alias="displayName", max_length=256)


class Credentials(Frame):
    """``auth: {token?|password?}``."""

    token: str | None = Field(default=None, max_length=1024)
    password: str | None = Field(default=None, max_length=1024)


class DeviceIdentity(Frame):
    """A signed device identity (verified by ``gateway/security/device.py``)."""

    id: str = Field(max_length=256)
    public_key: str = Field(alias="publicKey", max_length=1024)
    signature: str = Field(max_length=1024)
    signed_at: int = Field(alias="signedAt")
    nonce: str | None = Field(default=None, max_length=256)


class ConnectParams(Frame):
    """Params of the canonical ``connect`` request."""

    min_protocol: int = Field(alias="minProtocol", ge=1)
    max_protocol: int = Field(alias="maxProtocol", ge=1)
    client: ClientInfo
    role: Literal["operator", "node"] | None = None
    scopes: list[str] | None = Field(default=None, max_length=64)
    caps: list[str] | None = Field(default=None, max_length=256)
    commands: list[str] | None = Field(default=None, max_length=1024)
    permissions: dict[str, bool] | None = None
    path_env: str | None = Field(default=None, alias="pathEnv", max_length=65536)
    auth: Credentials | None = None
    device: DeviceIdentity | None = None
    locale: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, alias="userAgent", max_length=512)


class LegacyClientInfo(Frame):
    """Seed 002's ``hello.client``."""

    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    platform: str | None = Field(default=None, max_length=64)
    mode: str | None = Field(default=None, max_length=64)
    instance_id: str | None = Field(default=None, alias="instanceId", max_length=128)


class HelloFrame(Frame):
    """Seed 002's legacy handshake ``{"type":"hello",...}``."""

    type: Literal["hello"]
    min_protocol: int = Field(alias="minProtocol", ge=1)
    max_protocol: int = Field(alias="maxProtocol", ge=1)
    client: LegacyClientInfo
    caps: list[str] | None = Field(default=None, max_length=256)
    auth: Credentials | None = None
    locale: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, alias="userAgent", max_length=512)


class ServerInfo(Frame):
    version: str
    host: str
    conn_id: str = Field(alias="connId")


class Features(Frame):
    methods: list[str]
    events: list[str]


class StateVersion(Frame):
    presence: int
    health: int


class SessionDefaults(Frame):
    default_agent_id: str = Field(alias="defaultAgentId")
    main_session_key: str = Field(alias="mainSessionKey")


class PresenceEntry(Frame):
    """One connected client (seed 002's presence shape plus the ids a UI needs)."""

    conn_id: str = Field(alias="connId")
    host: str
    ip: str | None = None
    version: str | None = None
    mode: str | None = None
    role: str | None = None
    client_id: str | None = Field(default=None, alias="clientId")
    instance_id: str | None = Field(default=None, alias="instanceId")
    display_name: str | None = Field(default=None, alias="displayName")
    platform: str | None = None
    device_id: str | None = Field(default=None, alias="deviceId")
    dialect: str
    connected_at: int = Field(alias="connectedAt")
    ts: int
    reason: Literal["connect", "disconnect"] | None = None
    tags: list[str] | None = None


class Health(Frame):
    """The ``health`` method result and the snapshot's ``health``."""

    ok: bool
    status: Literal["healthy", "degraded"]
    version: str
    uptime_ms: int = Field(alias="uptimeMs")
    connections: int
    messages_processed: int = Field(alias="messagesProcessed")
    channel_layer: str = Field(alias="channelLayer")
    ts: int


class Snapshot(Frame):
    presence: list[PresenceEntry]
    health: Health
    state_version: StateVersion = Field(alias="stateVersion")
    uptime_ms: int = Field(alias="uptimeMs")
    session_defaults: SessionDefaults = Field(alias="sessionDefaults")


class Policy(Frame):
    max_payload: int = Field(alias="maxPayload")
    max_buffered_bytes: int = Field(alias="maxBufferedBytes")
    tick_interval_ms: int = Field(alias="tickIntervalMs")


class AuthGrant(Frame):
    role: str
    scopes: list[str]
    device_token: str | None = Field(default=None, alias="deviceToken")


class HelloOk(Frame):
    """Payload of the successful ``connect`` response (and the legacy ``hello-ok`` frame)."""

    type: Literal["hello-ok"] = "hello-ok"
    protocol: int
    server: ServerInfo
    features: Features
    snapshot: Snapshot
    policy: Policy
    auth: AuthGrant | None = None


class HelloError(Frame):
    """Legacy ``hello-error`` frame."""

    type: Literal["hello-error"] = "hello-error"
    reason: str
    expected_protocol: dict[str, int] | None = Field(default=None, alias="expectedProtocol")
    min_client: str | None = Field(default=None, alias="minClient")
    code: str | None = None


def dump(model: Frame) -> dict[str, Any]:
    """Wire form of a model: aliases, no ``None`` fields."""
    return model.model_dump(by_alias=True, exclude_none=True)
