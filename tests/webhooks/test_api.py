"""The webhooks REST API through DRF's APIClient on the real URLconf and middleware: CRUD,
rotate-secret, the delivery log, bad input refused by field with nothing saved, and the
OpenAPI schema. The test delivery needs a real server: tests/webhooks/test_api_e2e.py."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import Agent, Session
from gateway.protocol.webhooks import (
    DeliveryResult,
    WebhookFields,
    WebhookResult,
    WebhooksCreateParams,
    WebhookSecretResult,
)
from tests.conftest import API_TOKEN
from webhooks import secrets, services
from webhooks.api import serializers as api_serializers
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def agents():
    Agent.objects.create(id="main", model="wingman:echo", is_default=True)
    Agent.objects.create(id="other", model="wingman:echo")


def _row(webhook_id: str) -> dict:
    return Webhook.objects.values().get(pk=webhook_id)


def test_crud_with_and_without_trailing_slash(api, agents):
    created = api.post("/api/webhooks", {"name": "Gmail inbox", "agentId": "main"}, format="json")
    assert created.status_code == 201, created.data
    body = WebhookSecretResult.model_validate(created.data)
    assert body.webhook.id == "gmail-inbox" and body.webhook.preset == "none"
    assert secrets.secret_matches(body.secret, [_row("gmail-inbox")["secret_hash"]])

    listed = api.get("/api/webhooks/")
    assert listed.status_code == 200 and listed.data["count"] == 1
    assert [w["id"] for w in listed.data["results"]] == ["gmail-inbox"]
    got = api.get("/api/webhooks/gmail-inbox")
    assert got.status_code == 200 and body.secret not in str(got.data)
    assert WebhookResult.model_validate(got.data).secret_hint == body.secret[-4:]

    patched = api.patch("/api/webhooks/gmail-inbox", {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.data["enabled"] is False
    assert patched.data["name"] == "Gmail inbox"  # PATCH leaves the rest alone

    put = api.put(
        "/api/webhooks/gmail-inbox/",
        {"name": "Mail", "agentId": "other", "preset": "gog-gmail"},
        format="json",
    )
    assert put.status_code == 200, put.data
    assert (put.data["name"], put.data["agentId"], put.data["preset"]) == (
        "Mail",
        "other",
        "gog-gmail",
    )
    assert put.data["enabled"] is True  # PUT replaces: left out = default
    assert put.data["sessionKey"] == "agent:other:webhook:gmail-inbox"

    assert api.delete("/api/webhooks/gmail-inbox").status_code == 204
    assert not Webhook.objects.exists()
    assert Session.objects.filter(key="agent:other:webhook:gmail-inbox").exists()  # thread stays
    assert api.get("/api/webhooks/gmail-inbox").status_code == 404
    assert api.delete("/api/webhooks/gmail-inbox").status_code == 404


def test_create_with_every_setting(api, agents):
    Session.objects.create(key="agent:main:main", agent_id="main")
    data = {
        "id": "ci",
        "name": "CI",
        "agentId": "main",
        "enabled": False,
        "eventLabel": "build",
        "preset": "none",
        "sessionId": "agent:main:main",
        "ipAllowlist": ["10.0.0.0/8"],
        "requireSignature": True,
        "rateLimit": 30,
    }
    created = api.post("/api/webhooks", data, format="json")
    assert created.status_code == 201, created.data
    hook = created.data["webhook"]
    assert {k: hook[k] for k in data} == data
    assert hook["sessionKey"] == "agent:main:main"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "x", "agentId": "nobody"}, {"agentId"}),
        ({"name": "x", "agentId": "main", "ipAllowlist": ["nope"]}, {"ipAllowlist"}),
        ({"name": "x", "agentId": "main", "sessionId": "agent:x:y"}, {"sessionId"}),
        ({"name": "x", "agentId": "main", "bogus": 1}, {"bogus"}),
        ({"agentId": "main"}, {"name"}),
        ({"name": "x", "agentId": "main", "preset": "zapier"}, {"preset"}),
        ({"name": "x", "agentId": "main", "rateLimit": 0}, {"rateLimit"}),
        ({"name": "x", "agentId": "main", "id": "Not a slug"}, {"id"}),
        ({"name": "x", "agentId": "main", "secret": "0123456789abcdef"}, {"secret"}),
    ],
)
def test_create_refuses_bad_input_by_field(api, agents, body, fields):
    res = api.post("/api/webhooks", body, format="json")
    assert res.status_code == 400, res.data
    assert set(res.data) == fields, res.data
    assert not Webhook.objects.exists() and not Session.objects.exists()


def test_create_refuses_a_taken_id_and_a_non_object(api, agents):
    services.webhook_create(name="A", agent_id="main", id="a")
    res = api.post("/api/webhooks", {"id": "a", "name": "B", "agentId": "main"}, format="json")
    assert res.status_code == 400 and set(res.data) == {"id"}
    assert api.post("/api/webhooks", [1, 2], format="json").status_code == 400
    bad_json = api.post("/api/webhooks", "{", content_type="application/json")
    assert bad_json.status_code == 400
    assert Webhook.objects.count() == 1 and _row("a")["name"] == "A"


def test_updates_refuse_bad_input_and_save_nothing(api, agents):
    services.webhook_create(name="A", agent_id="main", id="a", rate_limit=5)
    before = _row("a")
    for method, body, field in [
        ("patch", {"agentId": "nobody"}, "agentId"),
        ("patch", {"ipAllowlist": ["1.2.3.4/40"]}, "ipAllowlist"),
        ("patch", {"name": None}, "name"),
        ("patch", {"id": "b"}, "id"),
        ("put", {"agentId": "main"}, "name"),
        ("put", {"name": "B", "agentId": "main", "sessionId": "agent:main:nope"}, "sessionId"),
    ]:
        res = getattr(api, method)("/api/webhooks/a", body, format="json")
        assert res.status_code == 400, (method, body, res.data)
        assert field in res.data, (method, body, res.data)
    assert _row("a") == before


def test_rotate_secret(api, agents):
    _, first = services.webhook_create(name="A", agent_id="main", id="a")
    res = api.post("/api/webhooks/a/rotate-secret", {"graceSeconds": 60}, format="json")
    assert res.status_code == 200, res.data
    rotated = WebhookSecretResult.model_validate(res.data)
    assert rotated.secret != first and rotated.webhook.previous_secret_expires_at
    row = _row("a")
    assert secrets.secret_matches(rotated.secret, [row["secret_hash"]])
    assert secrets.secret_matches(first, [row["previous_secret_hash"]])

    default = api.post("/api/webhooks/a/rotate-secret")  # no body: the default grace
    assert default.status_code == 200 and default.data["secret"] != rotated.secret
    for body, field in [({"graceSeconds": -1}, "graceSeconds"), ({"id": "b"}, "id")]:
        bad = api.post("/api/webhooks/a/rotate-secret", body, format="json")
        assert bad.status_code == 400 and field in bad.data, bad.data
    assert _row("a")["secret_hash"] == secrets.hash_secret(default.data["secret"])
    assert api.post("/api/webhooks/nope/rotate-secret").status_code == 404


def test_deliveries_newest_first_with_their_outcome(api, agents):
    webhook, _ = services.webhook_create(name="A", agent_id="main", id="a")
    now = timezone.now()
    for seconds, status, reason in [(3, 401, "wrong secret"), (1, 202, "accepted")]:
        Delivery.objects.create(
            webhook=webhook,
            received_at=now - timezone.timedelta(seconds=seconds),
            source_ip="192.0.2.7",
            status=status,
            reason=reason,
            body_size=12,
        )
    res = api.get("/api/webhooks/a/deliveries")
    assert res.status_code == 200 and res.data["count"] == 2
    rows = [DeliveryResult.model_validate(d) for d in res.data["results"]]
    assert [(d.status, d.reason, d.accepted) for d in rows] == [
        (202, "accepted", True),
        (401, "wrong secret", False),
    ]
    assert rows[0].source_ip == "192.0.2.7" and rows[0].body_size == 12
    assert api.get("/api/webhooks/a/deliveries?limit=1").data["results"][0]["status"] == 202
    assert api.get("/api/webhooks/nope/deliveries").status_code == 404


def test_needs_credentials(wingman_auth, agents):
    wingman_auth("token", token=API_TOKEN)
    anonymous = APIClient()
    assert anonymous.get("/api/webhooks").status_code == 401
    res = anonymous.post("/api/webhooks", {"name": "x", "agentId": "main"}, format="json")
    assert res.status_code == 401 and not Webhook.objects.exists()


def test_serializers_declare_the_protocol_models_fields():
    """The schema's declared shapes are the methods' (the models validate every input)."""

    def aliases(model) -> set[str]:
        return {f.alias or name for name, f in model.model_fields.items()}

    assert set(api_serializers.WebhookCreateInput().fields) == aliases(WebhooksCreateParams)
    assert set(api_serializers.WebhookPatchInput().fields) == aliases(WebhookFields)
    assert set(api_serializers.WebhookOutput().fields) == aliases(WebhookResult)
    assert set(api_serializers.DeliveryOutput().fields) == aliases(DeliveryResult)


def test_schema_declares_every_operation_and_status(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    expected = {
        ("/api/webhooks", "get"): {"200", "401", "403"},
        ("/api/webhooks", "post"): {"201", "400", "401", "403"},
        ("/api/webhooks/{id}", "get"): {"200", "401", "403", "404"},
        ("/api/webhooks/{id}", "put"): {"200", "400", "401", "403", "404"},
        ("/api/webhooks/{id}", "patch"): {"200", "400", "401", "403", "404"},
        ("/api/webhooks/{id}", "delete"): {"204", "400", "401", "403", "404"},
        ("/api/webhooks/{id}/rotate-secret", "post"): {"200", "400", "401", "403", "404"},
        ("/api/webhooks/{id}/test", "post"): {"200", "400", "401", "403", "404", "409", "503"},
        ("/api/webhooks/{id}/deliveries", "get"): {"200", "401", "403", "404"},
    }
    for (path, method), statuses in expected.items():
        assert set(paths[path][method]["responses"]) == statuses, (path, method)
    created = paths["/api/webhooks"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/WebhookSecretOutput")


def test_test_delivery_needs_a_secret_it_can_unseal(api, agents):
    """A secret sealed under another SECRET_KEY cannot be sent: 409 before any request."""
    services.webhook_create(name="A", agent_id="main", id="a")
    Webhook.objects.filter(pk="a").update(secret_sealed=secrets.seal("x" * 20) + "tampered")
    res = api.post("/api/webhooks/a/test")
    assert res.status_code == 409 and "rotate the secret" in res.data["detail"], res.data
    assert not Delivery.objects.exists()
