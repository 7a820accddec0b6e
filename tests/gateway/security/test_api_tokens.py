"""Who may call /api/: the gateway token, per-user API tokens (created and revoked in the
admin), the browser session with CSRF, and auth mode none."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import Agent
from gateway.models import ApiToken
from gateway.security import tokens
from gateway.security.webauth import SESSION_FLAG

pytestmark = pytest.mark.django_db

GATEWAY_TOKEN = "gw-secret"
PROTECTED = "/api/agents"


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=GATEWAY_TOKEN)
    Agent.objects.create(id="main", is_default=True)


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="pw-alice-123")


def _get(path: str = PROTECTED, *, secret: str | None = None, **extra):
    client = APIClient()
    if secret is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get(path, **extra)


# bearer ----------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "wrong", "wm_not-a-token", ""])
def test_without_valid_credentials_it_is_a_401_with_a_challenge(secret):
    response = _get(secret=secret)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="wingman"'
    assert response.data["code"] in ("not_authenticated", "authentication_failed")


def test_malformed_authorization_header_is_a_401():
    response = APIClient().get(PROTECTED, HTTP_AUTHORIZATION="Bearer two words")
    assert response.status_code == 401


def test_the_gateway_token_is_the_operator():
    assert _get(secret=GATEWAY_TOKEN).status_code == 200


def test_health_is_public_and_stats_is_not(settings):
    # Only the auth decision is checked here; the bodies come from the server's event loop
    # (tests/agents/test_api_e2e.py).
    assert _get("/api/stats").status_code == 401
    assert _get("/api/stats", secret="wrong").status_code == 401


# API tokens ------------------------------------------------------------------------------
def test_api_token_authenticates_as_its_user_and_only_the_hash_is_stored(alice):
    token, secret = tokens.api_token_create(user=alice, name="CI")
    assert secret.startswith("wm_") and len(secret) > 40
    assert token.prefix == secret[:10]
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(v) for v in ApiToken.objects.values().get(pk=token.pk).values()}
    assert stored.last_used_at is None

    response = _get("/api/agents", secret=secret)
    assert response.status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None
    assert tokens.api_token_lookup(secret=secret).user == alice


def test_last_used_at_is_written_at_most_once_a_minute(alice):
    token, secret = tokens.api_token_create(user=alice, name="CI")
    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    assert _get(secret=secret).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == recent
    old = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=old)
    assert _get(secret=secret).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > old + timedelta(minutes=1)


def test_revoked_token_and_token_of_inactive_user_are_refused(alice):
    token, secret = tokens.api_token_create(user=alice, name="CI")
    _, other_secret = tokens.api_token_create(user=alice, name="laptop")
    tokens.api_token_revoke(token=token)
    first_revocation = ApiToken.objects.get(pk=token.pk).revoked_at
    tokens.api_token_revoke(token=token)  # idempotent
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first_revocation
    assert _get(secret=secret).status_code == 401
    assert _get(secret=other_secret).status_code == 200
    alice.is_active = False
    alice.save()
    assert _get(secret=other_secret).status_code == 401


@pytest.mark.parametrize("name", ["", "   ", "n" * 101])
def test_token_needs_a_name(alice, name):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as err:
        tokens.api_token_create(user=alice, name=name)
    assert "name" in err.value.message_dict
    assert not ApiToken.objects.exists()


# browser session -------------------------------------------------------------------------
def test_logged_in_user_reads_and_writes_need_csrf(alice):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password="pw-alice-123")
    assert client.get(PROTECTED).status_code == 200
    refused = client.post("/api/sessions", {"agentId": "main"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.data["detail"]
    client.get("/admin/login/")  # sets the csrftoken cookie
    csrf = client.cookies["csrftoken"].value
    made = client.post("/api/sessions", {"agentId": "main"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert made.status_code == 201


def test_gateway_secret_login_session_is_the_operator():
    client = APIClient()
    session = client.session
    session[SESSION_FLAG] = True
    session.save()
    client.cookies["sessionid"] = session.session_key
    assert client.get(PROTECTED).status_code == 200


# auth mode none --------------------------------------------------------------------------
def test_mode_none_is_the_operator_except_from_another_sites_page(wingman_auth):
    wingman_auth("none")
    assert _get().status_code == 200
    assert _get(HTTP_ORIGIN="http://testserver").status_code == 200
    foreign = APIClient().post(
        "/api/sessions", {"agentId": "main"}, format="json", HTTP_ORIGIN="https://evil.example"
    )
    assert foreign.status_code == 401


# admin -----------------------------------------------------------------------------------
@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("root", password="pw-root-123")
    client.force_login(admin)
    return client


def test_admin_add_shows_the_secret_once_and_it_works(admin_client, alice):
    form = admin_client.get("/admin/gateway/apitoken/add/")
    assert form.status_code == 200
    fields = set(form.context["adminform"].form.fields)
    assert fields == {"user", "name"}

    response = admin_client.post(
        "/admin/gateway/apitoken/add/", {"user": alice.pk, "name": "deploy"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    secret = next(re.search(r"(wm_[\w-]+)", m).group(1) for m in shown if "wm_" in m)
    token = ApiToken.objects.get(name="deploy")
    assert token.user == alice and token.prefix == secret[:10]
    assert _get(secret=secret).status_code == 200

    detail = admin_client.get(f"/admin/gateway/apitoken/{token.pk}/change/").content.decode()
    assert secret not in detail and token.prefix in detail


def test_admin_revoke_action_search_and_filter(admin_client, alice):
    keep, keep_secret = tokens.api_token_create(user=alice, name="keep")
    drop, drop_secret = tokens.api_token_create(user=alice, name="drop")
    response = admin_client.post(
        "/admin/gateway/apitoken/",
        {"action": "revoke", "_selected_action": [drop.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert _get(secret=drop_secret).status_code == 401
    assert _get(secret=keep_secret).status_code == 200

    revoked = admin_client.get("/admin/gateway/apitoken/", {"revoked": "yes"})
    assert list(revoked.context["cl"].queryset) == [ApiToken.objects.get(pk=drop.pk)]
    active = admin_client.get("/admin/gateway/apitoken/", {"revoked": "no"})
    assert list(active.context["cl"].queryset) == [ApiToken.objects.get(pk=keep.pk)]
    found = admin_client.get("/admin/gateway/apitoken/", {"q": "alice"})
    assert found.context["cl"].result_count == 2


# management command ----------------------------------------------------------------------
def test_apitoken_command_creates_lists_and_revokes(alice):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command(
        "apitoken", "create", "--user", "alice", "--name", "cli", stdout=out, stderr=StringIO()
    )
    secret = out.getvalue().strip()
    assert _get(secret=secret).status_code == 200
    prefix = ApiToken.objects.get(name="cli").prefix

    listing = StringIO()
    call_command("apitoken", "list", stdout=listing)
    assert f"{prefix}  alice  cli  active" in listing.getvalue()

    call_command("apitoken", "revoke", prefix, stdout=StringIO())
    assert _get(secret=secret).status_code == 401
    with pytest.raises(CommandError, match="no user"):
        call_command("apitoken", "create", "--user", "bob", "--name", "x")
    with pytest.raises(CommandError, match="0 tokens"):
        call_command("apitoken", "revoke", "wm_nothing")
