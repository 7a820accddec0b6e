"""Webhook writes: the registry (``webhooks.py``: create, update, delete, rotate the secret,
import/export ``webhooks.json``) and inbound deliveries (``deliveries.py``: the checks of
``POST /webhooks/<id>``, the run they start, the delivery log, the ``webhook`` event)."""

from webhooks.services.webhooks import (
    WEBHOOK_FIELDS,
    WebhookImportError,
    WebhookImportResult,
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_update,
    webhooks_export,
    webhooks_import,
)

__all__ = [
    "WEBHOOK_FIELDS",
    "WebhookImportError",
    "WebhookImportResult",
    "webhook_create",
    "webhook_delete",
    "webhook_rotate_secret",
    "webhook_update",
    "webhooks_export",
    "webhooks_import",
]
