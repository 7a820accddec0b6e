"""Read-side views of this process's gateway state: health, stats and the ``hello-ok``
snapshot (the hub and the presence it tracks; the apps add figures through
``gateway/delivery/extensions.py``)."""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from django.conf import settings

import wingman
from gateway.delivery import extensions
from gateway.protocol.dialects.base import ClientIdentity, Dialect, now_ms
from gateway.protocol.events import EVENTS
from gateway.protocol.handshake import Features, Health, Policy, dump
from gateway.rpc.registry import registry
from gateway.state import outage

if TYPE_CHECKING:
    from gateway.delivery.hub import Hub


#: ``/health`` waits this long for Redis before it reports it unreachable (a paused Redis
#: would otherwise hold the probe for the client's whole socket timeout).
HEALTH_PROBE_SECONDS = 2.0


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
    return await hub.presence.snapshot()


def node_totals(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Node figures of the presence ``entries`` (every process): ``totalNodes`` counts every
    connected client (seed 001), ``toolNodes`` the canonical ``role: "node"`` connections
    (OpenClaw node hosts offering commands). Other kinds of nodes add their own counts to
    these (sum the dicts)."""
    return {
        "totalNodes": len(entries),
        "toolNodes": sum(
            1 for e in entries if e.get("role") == "node" and e.get("dialect") == "canonical"
        ),
    }


def gateway_stats(hub: Hub, totals: dict[str, int]) -> dict[str, Any]:
    """The ``stats`` of ``/health`` and the ``gateway`` of ``/stats`` (seed 001)."""
    return {
        "uptime": hub.stats.uptime_ms,
        **totals,
        "totalGroups": 0,
        "messagesProcessed": hub.stats.messages_processed,
        "startedAt": int(hub.stats.started_at * 1000),
        "activeSessions": 0,
        "connections": hub.established_count,
        **extensions.stats(),
    }


async def health_report(hub: Hub) -> dict[str, Any]:
    """Seed 001's ``GET /health`` body (also ``GET /api/health``). With Redis unreachable:
    ``status: "degraded"``, this process's own figures and ``down: {"redis": why}``."""
    try:
        entries, _ = await asyncio.wait_for(presence_snapshot(hub), HEALTH_PROBE_SECONDS)
    except outage.ERRORS as exc:
        why = outage.reason(exc) if str(exc) else f"no answer within {HEALTH_PROBE_SECONDS:g} s"
        outage.redis_state.failed(exc, "answering /health")
        down = {"redis": f"unreachable: {why}"}
        totals = node_totals(list(hub.presence.entries.values()))
    else:
        down, totals = {}, node_totals(entries)
    report = {
        "status": "degraded" if down else "healthy",
        "version": wingman.__version__,
        "stats": gateway_stats(hub, totals),
        "timestamp": now_ms(),
    }
    if down:
        report["down"] = down
    return report


async def stats_report(hub: Hub) -> dict[str, Any]:
    """Seed 001's ``GET /stats`` body (also ``GET /api/stats``)."""
    entries, _ = await presence_snapshot(hub)
    totals = node_totals(entries)
    return {
        "gateway": gateway_stats(hub, totals),
        "nodes": {**totals, "nodes": entries},
        "groups": {"totalGroups": 0, "groups": []},
        **await extensions.report(),
    }


#: Stands in for the presence array while the rest of hello-ok is encoded; random, so no
#: string that precedes it in the frame can contain it.
_PRESENCE_SLOT = f"wingman-presence-{secrets.token_hex(12)}"


class Greeting:
    """Who the ``hello-ok`` is for: the connection's id, identity, dialect and what the
    handshake granted (``hello-ok.auth``: role, scopes, deviceToken?)."""

    __slots__ = ("auth", "conn_id", "dialect", "identity")

    def __init__(
        self,
        conn_id: str,
        identity: ClientIdentity | None,
        dialect: Dialect,
        auth: dict[str, Any] | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.identity = identity
        self.dialect = dialect
        self.auth = auth


async def hello_ok_frame(hub: Hub, to: Greeting, protocol: int, request_id: Any) -> str:
    """The encoded ``hello-ok`` frame (the HelloOk model documents and tests its payload).

    Built as plain data: the presence entries are already in wire form, each serialised
    once when its connection joined and spliced in as one JSON array, so a connect storm
    of N clients costs N joins instead of N encodings of N entries (and no pydantic).
    """
    entries_json, sv = await hub.presence.snapshot_json()
    payload = _hello_ok(hub, to, protocol, _PRESENCE_SLOT, sv)
    text = to.dialect.encode_hello_ok(request_id, payload)
    return text.replace(f'"{_PRESENCE_SLOT}"', entries_json, 1)


def _hello_ok(
    hub: Hub, to: Greeting, protocol: int, entries: Any, sv: dict[str, int]
) -> dict[str, Any]:
    identity = to.identity
    payload: dict[str, Any] = {
        "type": "hello-ok",
        "protocol": protocol,
        "server": {
            "version": wingman.__version__,
            "host": settings.WINGMAN.name,
            "connId": to.conn_id,
        },
        "features": _FEATURES(),
        "snapshot": {
            "presence": entries,
            "health": dump(health(hub)),
            "stateVersion": sv,
            "uptimeMs": hub.stats.uptime_ms,
            "sessionDefaults": session_defaults(),
        },
        "policy": dump(policy()),
    }
    if to.auth is not None:
        payload["auth"] = to.auth
    elif identity is not None:
        payload["auth"] = {"role": identity.role, "scopes": identity.scopes}
    return payload


def session_defaults() -> dict[str, str]:
    return {"defaultAgentId": "main", "mainSessionKey": "agent:main:main"}


def _FEATURES() -> dict[str, list[str]]:
    return dump(features())
