"""What the apps add to every process: control messages, background work, shutdown,
disconnects, stats.

A feature app registers one :class:`Extension` from its ``AppConfig.ready()`` (never lazily
on first use), so a control message that reaches a process before its first run, room or
routine is never dropped. The seat installs the control handlers when it starts; the hub
calls the shutdown hooks during the drain and merges the stats into ``/health``; servers
and workers start the background work (``start_background``), tests that only need a hub
do not.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.protocol.dialects.base import ClientIdentity

ControlHandler = Callable[[dict[str, Any]], Awaitable[Any]]
#: Builds the agent tools one configured tool name stands for (e.g. ``node:box:system.run``).
ToolProvider = Callable[[str], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class Admission:
    """A connection whose credentials (and device signature) checked out, about to be
    established: what a :class:`DeviceAuthority` decides on."""

    conn_id: str
    client: ClientIdentity
    ip: str | None
    public_key: str | None = None
    #: A canonical ``role: "node"`` connection offering commands (the OpenClaw node host).
    tool_node: bool = False
    #: Its device may be paired without an operator (a browser, ``controlUi.pairingRequired``
    #: off); loopback with the gateway secret always may.
    unattended: bool = False
    #: The scopes the client asked for in its role, whatever its credential allows now: what
    #: a pairing request records for an operator to approve.
    requested_scopes: tuple[str, ...] = ()


class DeviceAuthority(Protocol):
    """Pairing and device tokens (the nodes app implements it; the handshake calls it)."""

    async def device_token_scopes(self, device_id: str, token: str) -> list[str] | None:
        """The scopes a valid device token was approved with, or None (not a device token)."""

    async def admit(self, admission: Admission) -> dict[str, Any]:
        """Admit the connection (raise ``GatewayError`` ``NOT_PAIRED`` to refuse); returns
        extra ``hello-ok.auth`` fields (``deviceToken``)."""

    async def departed(self, conn_id: str, client: ClientIdentity) -> None:
        """An admitted connection closed."""


@dataclass(frozen=True)
class Extension:
    """One app's hooks into the process (all optional)."""

    name: str
    #: Control messages other processes may send (``Seat.send_control``), by name.
    control: Mapping[str, ControlHandler] = field(default_factory=dict)
    #: Awaited first when a gateway drains, while clients are still connected.
    on_shutdown: Callable[[], Awaitable[Any]] | None = None
    #: Figures merged into ``/health``'s ``stats`` (cheap: called per request).
    stats: Callable[[], dict[str, Any]] | None = None
    #: Sections merged into ``/stats`` (e.g. ``{"groups": {...}}``), read per request.
    report: Callable[[], Awaitable[dict[str, Any]]] | None = None
    #: What the app stores (counts from the database), for the Control UI's Status page.
    stored: Callable[[], dict[str, Any]] | None = None
    #: Awaited with the connection id when a connection closes (live memberships end).
    on_disconnect: Callable[[str], Awaitable[Any]] | None = None
    #: Long-running coroutines (sweepers, heartbeats) that servers and workers start.
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    #: Decides device pairing on every handshake (at most one app provides it).
    authority: DeviceAuthority | None = None
    #: Agent tools the app provides, by the prefix of their configured name (``node``).
    tools: Mapping[str, ToolProvider] = field(default_factory=dict)
    #: Modules a serving process (gateway, worker) imports at start, before its GC tuning
    #: freezes what startup made, but that ``django.setup()`` alone (the CLI, the admin,
    #: migrations) must not pay for: the agent runtime (LangChain, ~1 s of CPU).
    preload: tuple[str, ...] = ()


_registered: dict[str, Extension] = {}


def register(extension: Extension) -> None:
    """Called from an app's ``ready()``; registering a name twice is an error."""
    if extension.name in _registered:
        raise ValueError(f"extension {extension.name!r} registered twice")
    _registered[extension.name] = extension


def control_handlers() -> dict[str, ControlHandler]:
    handlers: dict[str, ControlHandler] = {}
    for ext in _registered.values():
        for name, handler in ext.control.items():
            if name in handlers:
                raise ValueError(f"control message {name!r} handled twice")
            handlers[name] = handler
    return handlers


def shutdown_hooks() -> list[Callable[[], Awaitable[Any]]]:
    return [ext.on_shutdown for ext in _registered.values() if ext.on_shutdown is not None]


def disconnect_hooks() -> list[Callable[[str], Awaitable[Any]]]:
    return [ext.on_disconnect for ext in _registered.values() if ext.on_disconnect is not None]


def stats() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for ext in _registered.values():
        if ext.stats is not None:
            merged.update(ext.stats())
    return merged


async def report() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for ext in _registered.values():
        if ext.report is not None:
            merged.update(await ext.report())
    return merged


def stored() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for ext in _registered.values():
        if ext.stored is not None:
            merged.update(ext.stored())
    return merged


def background() -> list[Callable[[], Awaitable[None]]]:
    return [work for ext in _registered.values() for work in ext.background]


def authority() -> DeviceAuthority | None:
    """The registered :class:`DeviceAuthority` (None: no app pairs devices)."""
    found = [ext.authority for ext in _registered.values() if ext.authority is not None]
    if len(found) > 1:
        raise ValueError("more than one device authority registered")
    return found[0] if found else None


def preload() -> None:
    """Import every app's :attr:`Extension.preload` modules (a serving process, at start)."""
    for ext in _registered.values():
        for module in ext.preload:
            importlib.import_module(module)


def tool_provider(name: str) -> ToolProvider | None:
    """The provider of agent tool ``name`` (``<prefix>:...``), or None."""
    prefix, sep, _ = name.partition(":")
    if not sep:
        return None
    for ext in _registered.values():
        if prefix in ext.tools:
            return ext.tools[prefix]
    return None
