"""Params and results of the methods (design/protocol.md, "Methods")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.protocol.base import Frame, Open
from gateway.protocol.handshake import Health, PresenceEntry


class NoParams(Frame):
    """A method that takes no params (``{}`` or no ``params`` key)."""


class EventsParams(Frame):
    """``subscribe`` / ``unsubscribe {events:[...]}``."""

    events: list[str] = Field(min_length=1, max_length=64)


class AuthParams(Frame):
    """jsonrpc ``auth {token|password}``."""

    token: str | None = Field(default=None, max_length=1024)
    password: str | None = Field(default=None, max_length=1024)


class PingResult(Frame):
    pong: Literal[True] = True
    ts: int


class SubscriptionResult(Frame):
    events: list[str]


class AuthResult(Frame):
    ok: Literal[True] = True
    role: str


class StatusResult(Frame):
    server: dict[str, Any]
    health: Health
    presence_count: int = Field(alias="presenceCount")
    auth_mode: str = Field(alias="authMode")
    policy: dict[str, int]
    connection: dict[str, Any]


class PresenceResult(Frame):
    presence: list[PresenceEntry]
    state_version: dict[str, int] = Field(alias="stateVersion")


class ConfigGetParams(Open):
    """``config.get`` (OpenClaw may send a ``path``; the whole configuration is returned)."""

    path: str | None = None
