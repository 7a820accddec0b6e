"""System methods: ``health``, ``status``, ``ping``, ``system-presence``, ``subscribe``,
``unsubscribe`` (design/protocol.md, "Methods")."""

from __future__ import annotations

from django.conf import settings

import wingman
from gateway.delivery.publish import now_ms
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.events import EVENTS, MANDATORY_EVENTS
from gateway.protocol.handshake import Health, PresenceEntry
from gateway.protocol.system import (
    EventsParams,
    NoParams,
    PingResult,
    PresenceResult,
    StatusResult,
    SubscriptionResult,
)
from gateway.rpc import hello as selectors
from gateway.rpc.registry import CallContext, registry


@registry.method("ping", public=True)
async def ping(ctx: CallContext, params: NoParams) -> PingResult:
    """Liveness round trip."""
    return PingResult(ts=now_ms())


@registry.method("health")
async def health(ctx: CallContext, params: NoParams) -> Health:
    """This gateway process's health."""
    return selectors.health(ctx.connection.hub)


@registry.method("status")
async def status(ctx: CallContext, params: NoParams) -> StatusResult:
    """Health plus server, policy and the caller's own connection."""
    conn = ctx.connection
    entries, _ = await selectors.presence_snapshot(conn.hub)
    return StatusResult(
        server={
            "version": wingman.__version__,
            "host": settings.WINGMAN.name,
            "connId": conn.conn_id,
            "startedAt": int(conn.hub.stats.started_at * 1000),
        },
        health=selectors.health(conn.hub),
        presenceCount=len(entries),
        authMode=settings.WINGMAN.auth_mode,
        policy=selectors.policy().model_dump(by_alias=True),
        connection={
            "connId": conn.conn_id,
            "dialect": conn.dialect.name if conn.dialect else None,
            "subscriptions": sorted(conn.subscriptions),
            "role": conn.identity.role if conn.identity else None,
        },
    )


@registry.method("system-presence")
async def system_presence(ctx: CallContext, params: NoParams) -> PresenceResult:
    """Every connected client on every gateway process."""
    entries, sv = await selectors.presence_snapshot(ctx.connection.hub)
    return PresenceResult(
        presence=[PresenceEntry.model_validate(e) for e in entries], stateVersion=sv
    )


def _check_events(names: list[str]) -> None:
    unknown = sorted(set(names) - set(EVENTS))
    if unknown:
        raise GatewayError(
            ErrorCode.INVALID_REQUEST,
            f"unknown event(s): {', '.join(unknown)}",
            details={"known": list(EVENTS)},
        )


@registry.method("subscribe", EventsParams)
async def subscribe(ctx: CallContext, params: EventsParams) -> SubscriptionResult:
    """Receive these events from now on."""
    _check_events(params.events)
    ctx.connection.subscriptions.update(params.events)
    return SubscriptionResult(events=sorted(ctx.connection.subscriptions))


@registry.method("unsubscribe", EventsParams)
async def unsubscribe(ctx: CallContext, params: EventsParams) -> SubscriptionResult:
    """Stop receiving these events (``shutdown`` is always delivered)."""
    _check_events(params.events)
    ctx.connection.subscriptions.difference_update(set(params.events) - MANDATORY_EVENTS)
    return SubscriptionResult(events=sorted(ctx.connection.subscriptions))
