"""The ``webhooks.*`` methods through the real ASGI app: results validated against the
protocol models, the secret only in create/rotate results, bad input refused by field with
nothing saved."""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async

from agents.models import Session
from gateway.protocol.webhooks import (
    WebhookDeletedResult,
    WebhookResult,
    WebhookSecretResult,
    WebhooksListResult,
)
from tests.agents.conftest import acreate_agent
from webhooks import secrets
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db(transaction=True)

METHODS = {
    "webhooks.list",
    "webhooks.get",
    "webhooks.create",
    "webhooks.update",
    "webhooks.delete",
    "webhooks.rotateSecret",
}


@pytest.fixture
async def agents(backend):
    await acreate_agent("main", is_default=True, name="Main")
    await acreate_agent("other")


@database_sync_to_async
def stored(webhook_id: str) -> dict | None:
    return Webhook.objects.filter(pk=webhook_id).values().first()


@database_sync_to_async
def webhook_count() -> int:
    """Webhooks, plus the threads a webhook creates (none when it was refused)."""
    return Webhook.objects.count() + Session.objects.count()


async def connected(clients):
    client = clients()
    hello = await client.handshake()
    return client, hello


async def test_hello_lists_the_methods(clients, agents):
    _, hello = await connected(clients)
    assert set(hello["payload"]["features"]["methods"]) >= METHODS


async def test_create_shows_the_secret_once(clients, agents):
    c, _ = await connected(clients)
    res = await c.call(
        "webhooks.create",
        {"name": "Gmail inbox", "agentId": "main", "preset": "gog-gmail", "eventLabel": "mail"},
    )
    assert res["ok"], res
    created = WebhookSecretResult.model_validate(res["payload"])
    secret = created.secret
    assert created.webhook.id == "gmail-inbox" and created.webhook.preset == "gog-gmail"
    assert created.webhook.session_key == "agent:main:webhook:gmail-inbox"
    assert created.webhook.path == "/webhooks/gmail-inbox" and created.webhook.enabled
    assert len(secrets.hmac_key(secret)) >= 32
    row = await stored("gmail-inbox")
    assert secret not in str(row) and secrets.secret_matches(secret, [row["secret_hash"]])

    got = await c.call("webhooks.get", {"id": "gmail-inbox"})
    listed = await c.call("webhooks.list", {})
    assert secret not in str(got) and secret not in str(listed)
    assert WebhookResult.model_validate(got["payload"]).secret_hint == secret[-4:]
    assert [w.id for w in WebhooksListResult.model_validate(listed["payload"]).webhooks] == [
        "gmail-inbox"
    ]
    mine = await c.call("webhooks.list", {"agentId": "other"})
    assert mine["payload"] == {"webhooks": []}


async def test_create_with_a_given_id_and_every_setting(clients, agents):
    c, _ = await connected(clients)
    params = {
        "id": "ci",
        "name": "CI",
        "agentId": "other",
        "enabled": False,
        "ipAllowlist": ["10.0.0.0/8", "127.0.0.1"],
        "requireSignature": True,
        "rateLimit": 5,
    }
    res = await c.call("webhooks.create", params)
    assert res["ok"], res
    hook = WebhookResult.model_validate(res["payload"]["webhook"])
    assert (hook.id, hook.agent_id, hook.enabled, hook.rate_limit) == ("ci", "other", False, 5)
    assert hook.ip_allowlist == ["10.0.0.0/8", "127.0.0.1"] and hook.require_signature


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": "x", "agentId": "nobody"}, "agentId"),
        ({"name": "x", "agentId": "main", "ipAllowlist": ["not-an-ip"]}, "ipAllowlist"),
        ({"name": "x", "agentId": "main", "sessionId": "agent:main:nope"}, "sessionId"),
    ],
)
async def test_create_refuses_what_the_service_refuses_by_field(clients, agents, params, field):
    c, _ = await connected(clients)
    res = await c.call("webhooks.create", params)
    assert not res["ok"] and res["error"]["code"] == "INVALID_REQUEST", res
    assert set(res["error"]["details"]) == {field}, res["error"]
    assert await webhook_count() == 0


@pytest.mark.parametrize(
    "params",
    [
        {"agentId": "main"},  # no name
        {"name": "   ", "agentId": "main"},
        {"name": "x", "agentId": "main", "secret": "mine-mine-mine-mine"},  # never chosen here
        {"name": "x", "agentId": "main", "preset": "zapier"},
        {"name": "x", "agentId": "main", "id": "Bad Id!"},
        {"name": "x", "agentId": "main", "rateLimit": 0},
        {"name": "x", "agentId": "main", "enabled": None},
    ],
)
async def test_create_refuses_malformed_params(clients, agents, params):
    c, _ = await connected(clients)
    res = await c.call("webhooks.create", params)
    assert not res["ok"] and res["error"]["code"] == "INVALID_REQUEST", res
    assert await webhook_count() == 0


async def test_create_refuses_an_existing_id(clients, agents):
    c, _ = await connected(clients)
    assert (await c.call("webhooks.create", {"id": "a", "name": "A", "agentId": "main"}))["ok"]
    again = await c.call("webhooks.create", {"id": "a", "name": "B", "agentId": "other"})
    assert again["error"]["code"] == "INVALID_REQUEST" and "id" in again["error"]["details"]
    assert (await stored("a"))["name"] == "A"


async def test_update_changes_only_what_is_given(clients, agents):
    c, _ = await connected(clients)
    await c.call("webhooks.create", {"id": "a", "name": "A", "agentId": "main", "rateLimit": 9})
    session = await database_sync_to_async(Session.objects.create)(
        key="agent:main:main", agent_id="main"
    )
    res = await c.call("webhooks.update", {"id": "a", "enabled": False, "sessionId": session.key})
    hook = WebhookResult.model_validate(res["payload"])
    assert not hook.enabled and hook.session_id == session.key and hook.session_key == session.key
    assert hook.name == "A" and hook.rate_limit == 9
    cleared = await c.call("webhooks.update", {"id": "a", "sessionId": None, "rateLimit": None})
    hook = WebhookResult.model_validate(cleared["payload"])
    assert hook.session_id is None and hook.session_key == "agent:main:webhook:a"
    assert hook.rate_limit is None and not hook.enabled


async def test_update_refuses_bad_input_and_saves_nothing(clients, agents):
    c, _ = await connected(clients)
    await c.call("webhooks.create", {"id": "a", "name": "A", "agentId": "main"})
    before = await stored("a")
    moved = await c.call("webhooks.update", {"id": "a", "name": "B", "agentId": "nobody"})
    assert moved["error"]["code"] == "INVALID_REQUEST" and "agentId" in moved["error"]["details"]
    for params in (
        {"id": "a", "name": None},
        {"id": "a", "ipAllowlist": ["10.0.0.0/33"]},
        {"id": "a", "secretHash": "x"},
    ):
        res = await c.call("webhooks.update", params)
        assert res["error"]["code"] == "INVALID_REQUEST", (params, res)
    assert await stored("a") == before
    missing = await c.call("webhooks.update", {"id": "nope", "name": "x"})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_rotate_keeps_the_previous_secret_for_the_grace_period(clients, agents):
    c, _ = await connected(clients)
    first = (await c.call("webhooks.create", {"id": "a", "name": "A", "agentId": "main"}))[
        "payload"
    ]["secret"]
    res = await c.call("webhooks.rotateSecret", {"id": "a", "graceSeconds": 600})
    rotated = WebhookSecretResult.model_validate(res["payload"])
    assert rotated.secret != first and rotated.webhook.secret_hint == rotated.secret[-4:]
    until = rotated.webhook.previous_secret_expires_at
    assert until is not None and abs(until / 1000 - (time.time() + 600)) < 30
    row = await stored("a")
    assert secrets.secret_matches(first, [row["previous_secret_hash"]])
    assert secrets.secret_matches(rotated.secret, [row["secret_hash"]])
    assert first not in str(row) and rotated.secret not in str(row)

    res = await c.call("webhooks.rotateSecret", {"id": "a", "graceSeconds": 0})
    assert res["payload"]["webhook"]["previousSecretExpiresAt"] is None
    bad = await c.call("webhooks.rotateSecret", {"id": "a", "graceSeconds": -1})
    assert bad["error"]["code"] == "INVALID_REQUEST"
    missing = await c.call("webhooks.rotateSecret", {"id": "nope"})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_delete(clients, agents):
    c, _ = await connected(clients)
    await c.call("webhooks.create", {"id": "a", "name": "A", "agentId": "main"})
    res = await c.call("webhooks.delete", {"id": "a"})
    assert WebhookDeletedResult.model_validate(res["payload"]).id == "a"
    assert await stored("a") is None
    thread = database_sync_to_async(Session.objects.filter(key="agent:main:webhook:a").exists)
    assert await thread()  # the thread and its history stay
    for method in ("webhooks.get", "webhooks.delete"):
        again = await c.call(method, {"id": "a"})
        assert again["error"]["code"] == "NOT_FOUND", again
