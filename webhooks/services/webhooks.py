"""The webhook registry: create, update, delete, rotate the secret, and ``webhooks.json``
import/export (seed 001 ``WebhookConfig``). Bad input raises Django's ``ValidationError``
keyed by model field (the REST API makes it a 400, the methods INVALID_REQUEST) and
changes nothing."""

from __future__ import annotations

import ipaddress
import secrets as random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from agents.models import Agent, Session
from webhooks import secrets
from webhooks.models import Preset, Webhook

#: What ``webhook_update`` may change (the id, secret and timestamps are not among them).
WEBHOOK_FIELDS = (
    "name",
    "agent_id",
    "enabled",
    "event_label",
    "preset",
    "session_key",
    "ip_allowlist",
    "require_signature",
    "rate_limit",
)
#: An imported secret shorter than this is refused (generated ones are 32 random bytes).
MIN_IMPORTED_SECRET = 16


def _allowlist_errors(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ["a list of IP addresses or CIDRs"]
    errors = []
    for entry in value:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            errors.append(f"{entry!r} is not an IP address or CIDR")
    return errors


def _normalised(allowlist: Any) -> Any:
    if isinstance(allowlist, list) and all(isinstance(v, str) for v in allowlist):
        return [entry.strip() for entry in allowlist if entry.strip()]
    return allowlist


def webhook_check(webhook: Webhook) -> None:
    """Field validation plus what the model cannot express; raises ValidationError by field."""
    errors: dict[str, list[str]] = {}
    try:
        webhook.full_clean(
            exclude=["secret_hash", "secret_sealed"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        errors = dict(exc.message_dict)
    if not Agent.objects.filter(pk=webhook.agent_id).exists():
        errors["agent"] = [f"no agent {webhook.agent_id!r}"]
    if problems := _allowlist_errors(webhook.ip_allowlist):
        errors["ip_allowlist"] = problems
    if webhook.rate_limit is not None and webhook.rate_limit < 1:
        errors["rate_limit"] = ["at least 1 delivery per minute (empty: the gateway default)"]
    if webhook.session_key:
        owner = Session.objects.filter(key=webhook.session_key).values_list("agent_id", flat=True)
        if not owner:
            errors["session_key"] = [f"no session {webhook.session_key!r}"]
        elif owner[0] != webhook.agent_id:
            errors["session_key"] = [f"session belongs to agent {owner[0]!r}, not the webhook's"]
    if errors:
        raise ValidationError(errors)


def _ensure_thread(webhook: Webhook) -> None:
    """The webhook's own thread exists from the start (named ``Webhook: <name>``): it shows
    in the Control UI and can be subscribed to before the first delivery."""
    if webhook.session_key:
        return
    Session.objects.get_or_create(
        key=webhook.thread_key,
        defaults={"agent_id": webhook.agent_id, "name": f"Webhook: {webhook.name}"[:200]},
    )


def _new_id(name: str) -> str:
    base = (slugify(name)[:50].strip("-_") or "webhook").lower()
    candidate = base
    while Webhook.objects.filter(pk=candidate).exists():
        candidate = f"{base}-{random.token_hex(3)}"
    return candidate


def _set_secret(webhook: Webhook, secret: str) -> None:
    webhook.secret_hash = secrets.hash_secret(secret)
    webhook.secret_sealed = secrets.seal(secret)
    webhook.secret_hint = secrets.hint(secret)


@transaction.atomic
def webhook_create(
    *,
    name: str,
    agent_id: str,
    id: str | None = None,
    secret: str | None = None,
    enabled: bool = True,
    event_label: str = "",
    preset: str = Preset.NONE,
    session_key: str = "",
    ip_allowlist: list[str] | None = None,
    require_signature: bool = False,
    rate_limit: int | None = None,
) -> tuple[Webhook, str]:
    """A new webhook and its secret in full — the only time it can be read: store it now.
    Its thread (``agent:<agentId>:webhook:<id>``) is created with it, unless it targets a
    session.

    ``id`` defaults to a slug of ``name`` (made unique); ``secret`` defaults to a new one
    (``whsec_`` + 32 random bytes); a given one (an import) must be 16+ characters."""
    if secret is not None and len(secret) < MIN_IMPORTED_SECRET:
        raise ValidationError({"secret": [f"at least {MIN_IMPORTED_SECRET} characters"]})
    secret = secret or secrets.generate()
    webhook = Webhook(
        id=id or _new_id(name),
        name=name.strip(),
        agent_id=agent_id,
        enabled=enabled,
        event_label=event_label.strip(),
        preset=preset,
        session_key=session_key.strip(),
        ip_allowlist=_normalised(ip_allowlist if ip_allowlist is not None else []),
        require_signature=require_signature,
        rate_limit=rate_limit,
    )
    _set_secret(webhook, secret)
    webhook_check(webhook)
    try:
        with transaction.atomic():  # a savepoint: the race below leaves the outer one usable
            webhook.save(force_insert=True)
    except IntegrityError:  # the id is taken (checked by the insert: two creates may race)
        raise ValidationError({"id": [f"a webhook {webhook.id!r} already exists"]}) from None
    _ensure_thread(webhook)
    return webhook, secret


@transaction.atomic
def webhook_update(*, webhook: Webhook, **changes: Any) -> Webhook:
    """Change any of ``WEBHOOK_FIELDS`` (``agent_id`` moves it to another agent)."""
    unknown = set(changes) - set(WEBHOOK_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: ["not a field that can be changed"]})
    for name, value in changes.items():
        if name == "ip_allowlist":
            value = _normalised(value)
        setattr(webhook, name, value.strip() if isinstance(value, str) else value)
    webhook_check(webhook)
    webhook.save()
    _ensure_thread(webhook)
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    """Delete the webhook and its delivery log; its thread (the session) stays."""
    webhook.delete()


@transaction.atomic
def webhook_rotate_secret(
    *, webhook: Webhook, grace_seconds: int | None = None
) -> tuple[Webhook, str]:
    """A new secret (returned in full, once); the old one keeps verifying for
    ``grace_seconds`` (default ``WINGMAN_WEBHOOK_SECRET_GRACE_SECONDS``, 24 h; 0: not at all)."""
    grace = grace_seconds
    if grace is None:
        grace = settings.WINGMAN_WEBHOOK_SECRET_GRACE_SECONDS
    if grace < 0:
        raise ValidationError({"grace_seconds": ["must not be negative"]})
    locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if grace:
        locked.previous_secret_hash = locked.secret_hash
        locked.previous_secret_sealed = locked.secret_sealed
        locked.previous_secret_expires_at = timezone.now() + timedelta(seconds=grace)
    else:
        locked.previous_secret_hash = locked.previous_secret_sealed = ""
        locked.previous_secret_expires_at = None
    secret = secrets.generate()
    _set_secret(locked, secret)
    locked.save()
    return locked, secret


# webhooks.json -------------------------------------------------------------------------
class WebhookImportError(ValueError):
    """An entry of a ``webhooks.json`` is invalid; ``where`` names the entry and key."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass
class WebhookImportResult:
    """What an import did; ``secrets``: the secrets generated for entries without one."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{len(self.created)} webhook(s) created, {len(self.updated)} updated, "
            f"{len(self.skipped)} skipped (exist)"
        )


#: ``webhooks.json`` key → model field (seed 001 ``WebhookConfig`` plus this gateway's own).
_WIRE = {
    "name": "name",
    "agentId": "agent_id",
    "enabled": "enabled",
    "eventLabel": "event_label",
    "preset": "preset",
    "sessionId": "session_key",
    "sessionKey": "session_key",
    "ipAllowlist": "ip_allowlist",
    "requireSignature": "require_signature",
    "rateLimit": "rate_limit",
}
_IGNORED = {"id", "secret", "createdAt", "lastTriggeredAt", "secretHint"}


def _entries(data: Any) -> list[dict[str, Any]]:
    entries = data.get("webhooks") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise WebhookImportError("webhooks", 'expected {"webhooks": [...]} or a list')
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise WebhookImportError(f"webhooks[{index}]", "expected an object")
        unknown = sorted(set(entry) - set(_WIRE) - _IGNORED)
        if unknown:
            raise WebhookImportError(f"webhooks[{index}].{unknown[0]}", "unknown key")
        if not isinstance(entry.get("name"), str) or not isinstance(entry.get("agentId"), str):
            raise WebhookImportError(f"webhooks[{index}]", "name and agentId are required")
    return entries


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    fields = {model: entry[wire] for wire, model in _WIRE.items() if wire in entry}
    for text in ("event_label", "session_key"):
        if fields.get(text) is None and text in fields:
            fields[text] = ""
    return fields


@transaction.atomic
def webhooks_import(*, data: Any, update_existing: bool = False) -> WebhookImportResult:
    """Import ``{"webhooks": [WebhookConfig, ...]}`` (or the bare list) all or nothing.

    An entry's ``secret`` is kept (hashed and sealed); an entry without one gets a new
    secret, returned in ``result.secrets``. Existing ids are skipped, or updated (not their
    secret) with ``update_existing``."""
    result = WebhookImportResult()
    for index, entry in enumerate(_entries(data)):
        fields = _fields(entry)
        existing = Webhook.objects.filter(pk=entry.get("id")).first() if entry.get("id") else None
        try:
            if existing is not None and update_existing:
                webhook_update(webhook=existing, **fields)
                result.updated.append(existing.id)
            elif existing is not None:
                result.skipped.append(existing.id)
            else:
                webhook, secret = webhook_create(
                    id=entry.get("id"), secret=entry.get("secret") or None, **fields
                )
                result.created.append(webhook.id)
                if not entry.get("secret"):
                    result.secrets[webhook.id] = secret
        except ValidationError as exc:
            key, problems = next(iter(exc.message_dict.items()))
            raise WebhookImportError(f"webhooks[{index}].{key}", "; ".join(problems)) from exc
    return result


def webhook_export_entry(webhook: Webhook) -> dict[str, Any]:
    """One ``webhooks.json`` entry (no secret: it cannot be read back)."""
    return {
        "id": webhook.id,
        "name": webhook.name,
        "agentId": webhook.agent_id,
        "enabled": webhook.enabled,
        "eventLabel": webhook.event_label or None,
        "preset": webhook.preset,
        "sessionId": webhook.session_key or None,
        "ipAllowlist": list(webhook.ip_allowlist or []),
        "requireSignature": webhook.require_signature,
        "rateLimit": webhook.rate_limit,
        "createdAt": int(webhook.created_at.timestamp() * 1000),
    }


def webhooks_export() -> dict[str, Any]:
    """Every webhook as ``{"webhooks": [...]}``, importable again (secrets are not exported:
    an import of this file gives each webhook a new secret)."""
    return {"webhooks": [webhook_export_entry(w) for w in Webhook.objects.order_by("id")]}
