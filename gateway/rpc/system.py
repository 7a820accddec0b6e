"""System methods: ``health``, ``status``, ``ping``, ``system-presence``, ``subscribe``,
``unsubscribe`` (design/protocol.md, "Methods")."""

from __future__ import annotations

from django.conf import settings

import wingman
from gateway.delivery.hub import get_hub
from gateway.protocol.dialects.base import now_ms
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
from gateway.rpc import hello
from gateway.rpc.context import CallContext
from gateway.rpc.registry import registry


@registry.method("ping", public=True)
async def ping(ctx: CallContext, params: NoParams) -> PingResult:
    """Liveness round trip."""
    return PingResult(ts=now_ms())


@registry.method("health")
async def health(ctx: CallContext, params: NoParams) -> Health:
    """This gateway process's health."""
    return hello.health(await get_hub())


@registry.method("status")
async def status(ctx: CallContext, params: NoParams) -> StatusResult:
    """Health plus server, policy and the caller's own connection."""
    hub = await get_hub()
    entries, _ = await hello.presence_snapshot(hub)
    return StatusResult(
        server={
            "version": wingman.__version__,
            "host": settings.WINGMAN.name,
            "connId": ctx.conn_id,
            "startedAt": int(hub.stats.started_at * 1000),
        },
        health=hello.health(hub),
        presenceCount=len(entries),
        authMode=settings.WINGMAN.auth_mode,
        policy=hello.policy().model_dump(by_alias=True),
        connection={
            "connId": ctx.conn_id,
            "dialect": ctx.dialect_name,
            "subscriptions": sorted(ctx.subscriptions),
            "role": ctx.client.role if ctx.client else None,
        },
    )


@registry.method("system-presence")
async def system_presence(ctx: CallContext, params: NoParams) -> PresenceResult:
    """Every connected client on every gateway process."""
    entries, sv = await hello.presence_snapshot(await get_hub())
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
    ctx.subscribe(params.events)
    return SubscriptionResult(events=sorted(ctx.subscriptions))


@registry.method("unsubscribe", EventsParams)
async def unsubscribe(ctx: CallContext, params: EventsParams) -> SubscriptionResult:
    """Stop receiving these events (``shutdown`` is always delivered)."""
    _check_events(params.events)
    ctx.unsubscribe(set(params.events) - MANDATORY_EVENTS)
    return SubscriptionResult(events=sorted(ctx.subscriptions))
