"""The webhook registry services and selectors: create (secret shown once, never stored in
the clear), update, delete, rotate, webhooks.json import/export."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents.models import Agent, Session
from webhooks import secrets, selectors, services
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return Agent.objects.create(id="main", model="wingman:echo")


def test_create_returns_the_secret_once_and_stores_it_unreadable(agent):
    webhook, secret = services.webhook_create(name="Gmail Inbox", agent_id="main")
    assert webhook.id == "gmail-inbox"
    assert secret.startswith("whsec_") and len(secrets.hmac_key(secret)) == 32
    stored = Webhook.objects.values().get(pk=webhook.id)
    assert secret not in str(stored)
    assert secrets.secret_matches(secret, [stored["secret_hash"]])
    assert secrets.unseal(stored["secret_sealed"]) == secret
    data = selectors.webhook_data(webhook)
    assert secret not in str(data)
    assert data["secretHint"] == secret[-4:]
    assert data["sessionKey"] == "agent:main:webhook:gmail-inbox"
    assert data["path"] == "/webhooks/gmail-inbox"


def test_generated_ids_are_unique_and_given_ids_are_kept(agent):
    first, _ = services.webhook_create(name="CI", agent_id="main")
    second, _ = services.webhook_create(name="CI", agent_id="main")
    given, _ = services.webhook_create(name="x", agent_id="main", id="my-hook")
    assert first.id == "ci" and second.id.startswith("ci-") and given.id == "my-hook"
    with pytest.raises(ValidationError) as exc:
        services.webhook_create(name="y", agent_id="main", id="my-hook")
    assert "id" in exc.value.message_dict


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"agent_id": "nobody"}, "agent"),
        ({"id": "Bad Id!"}, "id"),
        ({"preset": "zapier"}, "preset"),
        ({"ip_allowlist": ["10.0.0.0/8", "not-an-ip"]}, "ip_allowlist"),
        ({"ip_allowlist": "10.0.0.1"}, "ip_allowlist"),
        ({"session_key": "agent:main:nothing"}, "session_key"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_created(agent, fields, field):
    kwargs = {"name": "Hook", "agent_id": "main", **fields}
    with pytest.raises(ValidationError) as exc:
        services.webhook_create(**kwargs)
    assert field in exc.value.message_dict
    assert not Webhook.objects.exists()


def test_target_session_must_belong_to_the_agent(agent):
    other = Agent.objects.create(id="other", model="wingman:echo")
    Session.objects.create(key="agent:other:main", agent=other)
    with pytest.raises(ValidationError):
        services.webhook_create(name="h", agent_id="main", session_key="agent:other:main")
    webhook, _ = services.webhook_create(name="h", agent_id="other", session_key="agent:other:main")
    assert webhook.thread_key == "agent:other:main"


def test_update_changes_only_allowed_fields(agent):
    webhook, _ = services.webhook_create(name="Hook", agent_id="main")
    services.webhook_update(
        webhook=webhook, enabled=False, ip_allowlist=[" 10.1.2.3 ", "192.168.0.0/16"]
    )
    webhook.refresh_from_db()
    assert not webhook.enabled and webhook.ip_allowlist == ["10.1.2.3", "192.168.0.0/16"]
    with pytest.raises(ValidationError):
        services.webhook_update(webhook=webhook, secret_hash="x")
    with pytest.raises(ValidationError):
        services.webhook_update(webhook=Webhook.objects.get(), preset="nope")
    assert Webhook.objects.get().preset == "none"


def test_rotation_keeps_the_old_secret_for_the_grace_period(agent):
    webhook, old = services.webhook_create(name="Hook", agent_id="main")
    webhook, new = services.webhook_rotate_secret(webhook=webhook)
    assert new != old
    assert secrets.secret_matches(new, [webhook.secret_hash])
    assert secrets.secret_matches(old, [webhook.previous_secret_hash])
    assert webhook.previous_secret_expires_at is not None
    webhook, _ = services.webhook_rotate_secret(webhook=webhook, grace_seconds=0)
    assert webhook.previous_secret_hash == "" and webhook.previous_secret_expires_at is None


def test_delete_keeps_the_thread(agent):
    webhook, _ = services.webhook_create(name="Hook", agent_id="main")
    assert Session.objects.get(key=webhook.thread_key).name == "Webhook: Hook"
    services.webhook_delete(webhook=webhook)
    assert not Webhook.objects.exists()
    assert Session.objects.filter(key="agent:main:webhook:hook").exists()


def test_import_the_seed_shape_and_export_it_again(agent):
    data = {
        "webhooks": [
            {
                "id": "gmail",
                "name": "Gmail",
                "agentId": "main",
                "secret": "an-existing-shared-secret",
                "enabled": True,
                "eventLabel": "new mail",
                "preset": "gog-gmail",
                "createdAt": 1700000000000,
            },
            {"id": "ci", "name": "CI", "agentId": "main", "enabled": False},
        ]
    }
    result = services.webhooks_import(data=data)
    assert result.created == ["gmail", "ci"] and list(result.secrets) == ["ci"]
    gmail = Webhook.objects.get(pk="gmail")
    assert secrets.secret_matches("an-existing-shared-secret", [gmail.secret_hash])
    assert gmail.preset == "gog-gmail" and gmail.event_label == "new mail"
    exported = services.webhooks_export()
    assert [e["id"] for e in exported["webhooks"]] == ["ci", "gmail"]
    assert "secret" not in exported["webhooks"][0]
    again = services.webhooks_import(data=exported)
    assert again.skipped == ["ci", "gmail"] and not again.created
    exported["webhooks"][0]["eventLabel"] = "build"
    services.webhooks_import(data=exported, update_existing=True)
    assert Webhook.objects.get(pk="ci").event_label == "build"


def test_a_bad_import_changes_nothing(agent):
    data = [
        {"id": "ok", "name": "ok", "agentId": "main"},
        {"id": "bad", "name": "bad", "agentId": "ghost"},
    ]
    with pytest.raises(services.WebhookImportError) as exc:
        services.webhooks_import(data=data)
    assert exc.value.where == "webhooks[1].agent"
    assert not Webhook.objects.exists()
    with pytest.raises(services.WebhookImportError):
        services.webhooks_import(data=[{"name": "x", "agentId": "main", "colour": "red"}])


def test_seal_refuses_tampering_and_other_keys(settings):
    sealed = secrets.seal("whsec_abc")
    assert secrets.unseal(sealed) == "whsec_abc"
    raw = bytearray(__import__("base64").b64decode(sealed))
    raw[17] ^= 1
    assert secrets.unseal(__import__("base64").b64encode(bytes(raw)).decode()) is None
    settings.SECRET_KEY = "another key entirely"
    assert secrets.unseal(sealed) is None
