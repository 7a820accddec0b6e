"""The Control UI webhooks pages with Django's test client: login required, create (the secret
shown once), errors next to their field with nothing saved, edit, enable/disable, rotate,
delete, the endpoint URL with its curl and gogcli commands, recent deliveries. The browser
flow (copy, test delivery, open the thread) is in test_ui_browser.py."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Agent, Session
from webhooks import secrets, services
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db

TOKEN = "ui-token"
BASE = "/integrations/webhooks/"


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=TOKEN)


@pytest.fixture
def agents():
    Agent.objects.create(id="main", name="Main", model="wingman:echo", is_default=True)
    Agent.objects.create(id="other", model="wingman:echo")


@pytest.fixture
def ui(client: Client, agents) -> Client:
    response = client.post("/login/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 302
    return client


def form(**fields) -> dict:
    data = {"id": "", "name": "Gmail", "agent_id": "main", "enabled": "on", "preset": "none"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def page(response) -> str:
    return html.unescape(response.content.decode())


def field_block(response, field: str) -> str:
    text = page(response)
    block = text[text.index(f'data-field="{field}"') :]
    end = block.find('<div class="field', 1)
    return block if end < 0 else block[:end]  # up to the next field


@pytest.mark.parametrize("path", [BASE, f"{BASE}+new/", f"{BASE}x/"])
def test_pages_need_a_login(client: Client, agents, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_nav_links_the_page(ui: Client) -> None:
    assert f'href="{BASE}"' in ui.get("/agents/").content.decode()


def test_create_shows_the_secret_once_with_ready_commands(ui: Client) -> None:
    created = ui.post(
        f"{BASE}+new/",
        form(preset="gog-gmail", ip_allowlist="10.0.0.0/8, 127.0.0.1", rate_limit="30"),
    )
    assert created.status_code == 302 and created["Location"] == f"{BASE}gmail/"
    webhook = Webhook.objects.get(pk="gmail")
    assert webhook.preset == "gog-gmail" and webhook.ip_allowlist == ["10.0.0.0/8", "127.0.0.1"]
    assert webhook.rate_limit == 30

    stored = {k: str(v) for k, v in ui.session.items()}  # the secret waits sealed, not in clear
    shown = page(ui.get(f"{BASE}gmail/"))
    secret = shown.split('id="secret-value">', 1)[1].split("<", 1)[0]
    assert secrets.secret_matches(secret, [webhook.secret_hash])
    assert secret not in str(stored) and "webhooks.secret.gmail" in stored
    assert "webhooks.secret.gmail" not in ui.session
    url = "http://testserver/webhooks/gmail"
    assert f'<code id="endpoint-url">{url}</code>' in shown
    assert f"--hook-url {url} --hook-token {secret}" in shown
    assert "gog gmail watch serve" in shown
    assert f"curl -X POST {url} -H 'Authorization: Bearer {secret}'" in shown
    assert "/?session=agent%3Amain%3Awebhook%3Agmail" in shown  # open the thread

    again = page(ui.get(f"{BASE}gmail/"))
    assert secret not in again and 'id="webhook-secret"' not in again
    assert "--hook-token <secret>" in again  # the command, with a placeholder now

    listed = page(ui.get(BASE))
    assert 'data-webhook="gmail"' in listed and secret not in listed


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"id": "Bad Id"}, "id", "lowercase letters"),
        ({"name": ""}, "name", "required"),
        ({"agent_id": "nobody"}, "agent_id", "not one of the available choices"),
        ({"ip_allowlist": "nope"}, "ip_allowlist", "not an IP address or CIDR"),
        ({"session_key": "agent:main:nope"}, "session_key", "no session"),
        ({"rate_limit": "0"}, "rate_limit", "greater than or equal to 1"),
    ],
)
def test_create_errors_are_next_to_the_field(ui: Client, fields, field, message) -> None:
    response = ui.post(f"{BASE}+new/", form(**fields))
    assert response.status_code == 400
    assert message in field_block(response, field)
    assert not Webhook.objects.exists()


def test_a_service_error_keyed_agent_shows_at_the_agent_field(agents) -> None:
    """The service names the model field (``agent``); the form's field is ``agent_id``."""
    from django.core.exceptions import ValidationError

    from webhooks.ui.forms import WebhookForm

    bound = WebhookForm(data=form())
    assert bound.is_valid(), bound.errors
    bound.add_service_errors(ValidationError({"agent": ["no agent 'x'"], "other": ["on top"]}))
    assert bound.errors["agent_id"] == ["no agent 'x'"]
    assert bound.non_field_errors() == ["on top"]


def test_create_refuses_a_taken_id(ui: Client) -> None:
    services.webhook_create(name="A", agent_id="main", id="gmail")
    response = ui.post(f"{BASE}+new/", form(id="gmail"))
    assert response.status_code == 400 and "already exists" in field_block(response, "id")
    assert Webhook.objects.get(pk="gmail").name == "A"


def test_edit_saves_and_errors_keep_the_stored_webhook(ui: Client) -> None:
    services.webhook_create(name="A", agent_id="main", id="a")
    Session.objects.create(key="agent:other:main", agent_id="other")
    saved = ui.post(f"{BASE}a/", form(name="B", agent_id="other", session_key="agent:other:main"))
    assert saved.status_code == 302
    webhook = Webhook.objects.get(pk="a")
    assert (webhook.name, webhook.agent_id, webhook.session_key) == (
        "B",
        "other",
        "agent:other:main",
    )
    assert not webhook.require_signature

    refused = ui.post(f"{BASE}a/", form(name="C", session_key="agent:other:main"))
    assert refused.status_code == 400
    assert "belongs to agent 'other'" in field_block(refused, "session_key")
    assert Webhook.objects.get(pk="a").name == "B"
    assert "<h1>Webhook <code>a</code>" in page(refused)
    assert ui.get(f"{BASE}nope/").status_code == 404


def test_enable_disable_rotate_delete(ui: Client) -> None:
    _, first = services.webhook_create(name="A", agent_id="main", id="a")
    assert ui.post(f"{BASE}a/toggle/", {"enabled": "maybe"}).status_code == 400
    assert Webhook.objects.get(pk="a").enabled
    off = ui.post(f"{BASE}a/toggle/", {"enabled": "false", "next": "list"})
    assert off["Location"] == BASE and not Webhook.objects.get(pk="a").enabled
    assert "pill-off" in page(ui.get(BASE))
    on = ui.post(f"{BASE}a/toggle/", {"enabled": "true"})
    assert on["Location"] == f"{BASE}a/" and Webhook.objects.get(pk="a").enabled

    assert ui.post(f"{BASE}a/rotate/").status_code == 302
    shown = page(ui.get(f"{BASE}a/"))
    secret = shown.split('id="secret-value">', 1)[1].split("<", 1)[0]
    webhook = Webhook.objects.get(pk="a")
    assert secret != first and secrets.secret_matches(secret, [webhook.secret_hash])
    assert secrets.secret_matches(first, [webhook.previous_secret_hash])
    assert "The previous secret keeps working until" in shown

    assert ui.get(f"{BASE}a/delete/").status_code == 405
    deleted = ui.post(f"{BASE}a/delete/")
    assert deleted["Location"] == BASE and not Webhook.objects.exists()
    assert ui.post(f"{BASE}a/delete/").status_code == 404


def test_recent_deliveries_with_outcome_and_thread(ui: Client) -> None:
    webhook, _ = services.webhook_create(name="A", agent_id="main", id="a")
    now = timezone.now()
    Delivery.objects.create(
        webhook=webhook, received_at=now, source_ip="192.0.2.9", status=401, reason="wrong secret"
    )
    shown = page(ui.get(f"{BASE}a/"))
    row = shown[shown.index('data-status="401"') :]
    row = row[: row.index("</tr>")]
    assert "192.0.2.9" in row and "wrong secret" in row and "pill-off" in row
