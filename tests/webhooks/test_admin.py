"""Admin smoke tests for webhooks: the list with the endpoint URL, add (secret shown once,
through the service), change checked like the API, the rotate/enable/disable actions, the
deliveries inline and list."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from agents.models import Agent
from webhooks import secrets, services
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook():
    Agent.objects.create(id="main", model="wingman:echo", is_default=True)
    webhook, secret = services.webhook_create(name="Findme hook", agent_id="main", id="a")
    Delivery.objects.create(
        webhook=webhook, status=401, reason="wrong secret", source_ip="192.0.2.1"
    )
    return webhook, secret


def change_data(**fields) -> dict:
    data = {
        "name": "Hook",
        "agent": "main",
        "enabled": "on",
        "event_label": "",
        "preset": "none",
        "session_key": "",
        "ip_allowlist": "[]",
        "rate_limit": "",
        "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return data


def test_list_shows_the_endpoint_url_and_search(admin_client, hook):
    url = reverse("admin:webhooks_webhook_changelist")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "<code>POST http://testserver/webhooks/a</code>" in page.content.decode()
    assert admin_client.get(url, {"q": "findme"}).context["cl"].result_count == 1
    assert admin_client.get(url, {"q": "nothing-here"}).context["cl"].result_count == 0


def test_change_page_lists_recent_deliveries_and_never_the_secret(admin_client, hook):
    webhook, secret = hook
    page = admin_client.get(reverse("admin:webhooks_webhook_change", args=["a"]))
    text = page.content.decode()
    assert page.status_code == 200 and "wrong secret" in text and "192.0.2.1" in text
    assert secret not in text and webhook.secret_hash not in text
    assert admin_client.get(reverse("admin:webhooks_delivery_changelist")).status_code == 200


def test_add_goes_through_the_service_and_shows_the_secret_once(admin_client, hook):
    response = admin_client.post(
        reverse("admin:webhooks_webhook_add"), change_data(id="b", name="B", preset="gog-gmail")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Webhook.objects.get(pk="b")
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    secret = next(m for m in shown if "shown this once" in m).rsplit(" ", 1)[-1]
    assert secrets.secret_matches(secret, [created.secret_hash]) and created.preset == "gog-gmail"


def test_bad_input_is_refused_by_field_and_saves_nothing(admin_client, hook):
    url = reverse("admin:webhooks_webhook_change", args=["a"])
    response = admin_client.post(url, change_data(ip_allowlist='["nope"]', name="Changed"))
    assert response.status_code == 200
    assert "ip_allowlist" in response.context["adminform"].form.errors
    assert Webhook.objects.get(pk="a").name == "Findme hook"
    added = admin_client.post(reverse("admin:webhooks_webhook_add"), change_data(id="a"))
    assert added.status_code == 200 and "id" in added.context["adminform"].form.errors


def test_actions_rotate_disable_enable(admin_client, hook):
    _, first = hook
    url = reverse("admin:webhooks_webhook_changelist")
    rotated = admin_client.post(url, {"action": "rotate_secret", "_selected_action": ["a"]})
    webhook = Webhook.objects.get(pk="a")
    assert secrets.secret_matches(first, [webhook.previous_secret_hash])
    shown = " ".join(str(m) for m in get_messages(rotated.wsgi_request))
    new = shown.split("(shown this once): ", 1)[1].split(";", 1)[0]
    assert secrets.secret_matches(new, [webhook.secret_hash])

    admin_client.post(url, {"action": "disable", "_selected_action": ["a"]})
    assert not Webhook.objects.get(pk="a").enabled
    admin_client.post(url, {"action": "enable", "_selected_action": ["a"]})
    assert Webhook.objects.get(pk="a").enabled
