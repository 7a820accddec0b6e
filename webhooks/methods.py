"""The ``webhooks.*`` methods on the gateway's method registry (every dialect).

They mirror the REST API (``/api/webhooks``): the same params models, the same services.
A service's field-keyed ``ValidationError`` becomes ``INVALID_REQUEST`` with
``details: {wireField: [messages]}``; nothing is saved.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.webhooks import (
    WebhookIdParams,
    WebhooksCreateParams,
    WebhooksListParams,
    WebhooksRotateParams,
    WebhooksUpdateParams,
)
from gateway.rpc import CallContext, registry
from webhooks import selectors, services, wire
from webhooks.wire import service_fields, webhook_get, wire_errors

db = database_sync_to_async


def _invalid(error: ValidationError) -> GatewayError:
    details = wire_errors(error)
    first = next(iter(details.items()), ("", ["invalid"]))
    text = f"{first[0]}: {first[1][0]}" if first[0] else first[1][0]
    return GatewayError(ErrorCode.INVALID_REQUEST, text, details=details)


@registry.method("webhooks.list", WebhooksListParams)
async def webhooks_list(ctx: CallContext, params: WebhooksListParams) -> dict[str, Any]:
    """Every webhook (of ``agentId``), without secrets."""
    return {"webhooks": await db(selectors.webhook_list)(agent_id=params.agent_id)}


@registry.method("webhooks.get", WebhookIdParams)
async def webhooks_get(ctx: CallContext, params: WebhookIdParams) -> dict[str, Any]:
    return await db(_get)(params.id)


def _get(webhook_id: str) -> dict[str, Any]:
    return selectors.webhook_data(webhook_get(webhook_id))


@registry.method("webhooks.create", WebhooksCreateParams)
async def webhooks_create(ctx: CallContext, params: WebhooksCreateParams) -> dict[str, Any]:
    """A new webhook and its secret (in this result only)."""
    return await db(_create)(params)


def _create(params: WebhooksCreateParams) -> dict[str, Any]:
    try:
        webhook, secret = services.webhook_create(**service_fields(params, create=True))
    except ValidationError as error:
        raise _invalid(error) from None
    return wire.webhook_secret_data(webhook, secret)


@registry.method("webhooks.update", WebhooksUpdateParams)
async def webhooks_update(ctx: CallContext, params: WebhooksUpdateParams) -> dict[str, Any]:
    """Change the fields given (enable/disable is ``{id, enabled}``)."""
    return await db(_update)(params)


def _update(params: WebhooksUpdateParams) -> dict[str, Any]:
    webhook = webhook_get(params.id)
    try:
        webhook = services.webhook_update(webhook=webhook, **service_fields(params))
    except ValidationError as error:
        raise _invalid(error) from None
    return selectors.webhook_data(webhook)


@registry.method("webhooks.delete", WebhookIdParams)
async def webhooks_delete(ctx: CallContext, params: WebhookIdParams) -> dict[str, Any]:
    """Delete the webhook and its delivery log (its thread stays)."""
    await db(_delete)(params.id)
    return {"id": params.id, "deleted": True}


def _delete(webhook_id: str) -> None:
    services.webhook_delete(webhook=webhook_get(webhook_id))


@registry.method("webhooks.rotateSecret", WebhooksRotateParams)
async def webhooks_rotate_secret(ctx: CallContext, params: WebhooksRotateParams) -> dict[str, Any]:
    """A new secret (in this result only); the previous one verifies until
    ``previousSecretValidUntil``."""
    return await db(_rotate)(params)


def _rotate(params: WebhooksRotateParams) -> dict[str, Any]:
    webhook = webhook_get(params.id)
    try:
        webhook, secret = services.webhook_rotate_secret(
            webhook=webhook, grace_seconds=params.grace_seconds
        )
    except ValidationError as error:
        raise _invalid(error) from None
    return wire.webhook_secret_data(webhook, secret)
