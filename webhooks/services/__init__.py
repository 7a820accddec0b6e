"""Webhook writes: the registry (``webhooks.py``: create, update, delete, rotate the secret,
import/export ``webhooks.json``), inbound deliveries (``deliveries.py``: the checks of
``POST /webhooks/<id>``, the run they start, the delivery log, the ``webhook`` event), test
deliveries (``samples.py``) and OpenClaw's hooks (``hooks.py``)."""

from webhooks.services.deliveries import Answer, Inbound, delivery_receive
from webhooks.services.samples import SAMPLE_PAYLOADS, webhook_test
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
    "SAMPLE_PAYLOADS",
    "WEBHOOK_FIELDS",
    "Answer",
    "Inbound",
    "WebhookImportError",
    "WebhookImportResult",
    "delivery_receive",
    "webhook_create",
    "webhook_delete",
    "webhook_rotate_secret",
    "webhook_test",
    "webhook_update",
    "webhooks_export",
    "webhooks_import",
]
