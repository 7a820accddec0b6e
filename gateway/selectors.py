"""Read-side views of gateway state: health, status and the ``hello-ok`` snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings

import wingman
from gateway import presence
from gateway.events import now_ms
from gateway.methods.registry import registry
from gateway.protocol.events import EVENTS
from gateway.protocol.handshake import (
    AuthGrant,
    Features,
    Health,
    HelloOk,
    Policy,
    PresenceEntry,
    ServerInfo,
    SessionDefaults,
    Snapshot,
    StateVersion,
)

if TYPE_CHECKING:
    from gateway.connection import Connection
    from gateway.hub import Hub


def channel_layer_name() -> str:
    return "redis" if settings.REDIS_URL else "in-memory"


def policy() -> Policy:
    p = settings.WINGMAN.policy
    return Policy(
        maxPayload=p.max_payload,
        maxBufferedBytes=p.max_buffered_bytes,
        tickIntervalMs=p.tick_interval_ms,
    )


def features() -> Features:
    return Features(methods=registry.names(), events=list(EVENTS))


def health(hub: Hub) -> Health:
    return Health(
        ok=True,
        status="healthy",
        version=wingman.__version__,
        uptimeMs=hub.stats.uptime_ms,
        connections=hub.established_count,
        messagesProcessed=hub.stats.messages_processed,
        channelLayer=channel_layer_name(),
        ts=now_ms(),
    )


async def presence_snapshot(hub: Hub) -> tuple[list[dict[str, Any]], dict[str, int]]:
    entries = await hub.all_presence()
    return entries, await presence.state_version()


async def hello_ok(conn: Connection, protocol: int) -> HelloOk:
    hub = conn.hub
    entries, sv = await presence_snapshot(hub)
    return HelloOk(
        protocol=protocol,
        server=ServerInfo(
            version=wingman.__version__, host=settings.WINGMAN.name, connId=conn.conn_id
        ),
        features=features(),
        snapshot=Snapshot(
            presence=[PresenceEntry.model_validate(e) for e in entries],
            health=health(hub),
            stateVersion=StateVersion(**sv),
            uptimeMs=hub.stats.uptime_ms,
            sessionDefaults=SessionDefaults(
                defaultAgentId="main", mainSessionKey="agent:main:main"
            ),
        ),
        policy=policy(),
        auth=AuthGrant(role=conn.identity.role, scopes=conn.identity.scopes)
        if conn.identity
        else None,
    )
