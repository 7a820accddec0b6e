"""JSON Schema of the protocol, generated from the pydantic models (served and printable)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

import wingman
from gateway.protocol import PROTOCOL_MAX, PROTOCOL_MIN, frames, handshake, system, webhooks
from gateway.protocol import events as ev
from gateway.protocol.dialects.jsonrpc import JsonRpcRequest

MODELS = [
    frames.RequestFrame,
    frames.ResponseFrame,
    frames.EventFrame,
    frames.ErrorShape,
    handshake.ConnectParams,
    handshake.HelloFrame,
    handshake.HelloOk,
    handshake.HelloError,
    handshake.PresenceEntry,
    handshake.Health,
    system.EventsParams,
    system.AuthParams,
    system.PingResult,
    system.StatusResult,
    system.PresenceResult,
    system.SubscriptionResult,
    ev.ChallengePayload,
    ev.TickPayload,
    ev.PresencePayload,
    ev.PresenceTickPayload,
    ev.ShutdownPayload,
    ev.WebhookPayload,
    JsonRpcRequest,
    # results of the webhooks.* methods (their params are under "methods")
    webhooks.WebhookResult,
    webhooks.WebhookSecretResult,
    webhooks.WebhooksListResult,
    webhooks.WebhookDeletedResult,
    webhooks.DeliveryResult,
]


@cache
def protocol_schema() -> dict[str, Any]:
    """One document with every model under ``$defs`` plus the method and event names."""
    from gateway.rpc.registry import registry

    _, top = models_json_schema([(m, "validation") for m in MODELS], ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://wingman.dev/protocol/schema.json",
        "title": "Wingman Gateway protocol",
        "version": wingman.__version__,
        "protocol": {"min": PROTOCOL_MIN, "max": PROTOCOL_MAX},
        "methods": {
            m.name: {"params": m.params.model_json_schema(by_alias=True)} for m in registry.all()
        },
        "events": list(ev.EVENTS),
        "$defs": top.get("$defs", {}),
    }
