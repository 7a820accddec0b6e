"""Control UI views with Django's test client: login, logout, access, CSRF, the agent forms.

The browser flows (chat, streaming, status) are in test_control_ui_browser.py.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agents.models import Agent, Binding, Session
from agents.services import agents as agent_service
from agents.services import sessions as session_service
from gateway.security import auth
from gateway.security.webauth import SESSION_FLAG

pytestmark = pytest.mark.django_db

TOKEN = "ui-token"
PAGES = ["/", "/status/", "/agents/", "/agents/+new/", "/agents/main/"]


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=TOKEN)


@pytest.fixture
def main_agent() -> Agent:
    return Agent.objects.create(id="main", name="Main", model="wingman:echo", is_default=True)


@pytest.fixture
def token_client(client: Client, main_agent) -> Client:
    response = client.post("/login/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 302, response.content
    return client


def make_user(username="alice", password="s3cret-pass-123", **fields):  # noqa: S107
    return get_user_model().objects.create_user(username=username, password=password, **fields)


# access -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(client: Client, main_agent, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path.replace('+', '%2B')}"


def test_auth_mode_none_needs_no_login(client: Client, main_agent, wingman_auth) -> None:
    wingman_auth("none")
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    assert client.get("/login/").status_code == 302, "nothing to log in to"


def test_pages_send_a_content_security_policy(token_client: Client) -> None:
    for path in PAGES:
        policy = token_client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path


# login with the gateway secret ---------------------------------------------------------------
def test_token_login_rotates_the_session_and_sets_the_flag(client: Client, main_agent) -> None:
    client.get("/login/")
    client.session.save()
    before = client.session.session_key
    response = client.post("/login/?next=/status/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 302 and response["Location"] == "/status/"
    assert client.session.session_key != before, "no session fixation"
    assert client.session[SESSION_FLAG] is True
    assert client.get("/status/").status_code == 200


def test_wrong_token_is_refused_next_to_the_field(client: Client) -> None:
    response = client.post("/login/", {"method": "secret", "gw-secret": "nope"})
    assert response.status_code == 400
    assert SESSION_FLAG not in client.session
    errors = response.context["secret_form"].errors["secret"]
    assert errors == ["unauthorized: gateway token mismatch"]
    assert b"unauthorized: gateway token mismatch" in response.content


def test_password_mode_logs_in_with_the_password(client: Client, wingman_auth) -> None:
    wingman_auth("password", password="pw-123")
    page = client.get("/login/")
    assert b"Gateway password" in page.content
    assert client.post("/login/", {"method": "secret", "gw-secret": "pw-123"}).status_code == 302


def test_login_locks_out_after_repeated_failures(client: Client) -> None:
    for _ in range(auth.MAX_FAILURES):
        client.post("/login/", {"method": "secret", "gw-secret": "nope"})
    response = client.post("/login/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 429, "even the right token waits out the lockout"
    assert "too many failed authentication attempts" in response.content.decode()
    assert 1 <= int(response["Retry-After"]) <= auth.lockout_seconds()
    assert SESSION_FLAG not in client.session


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_next_must_stay_on_this_site(client: Client, target: str) -> None:
    response = client.post(f"/login/?next={target}", {"method": "secret", "gw-secret": TOKEN})
    assert response["Location"] == "/"


def test_login_form_needs_csrf(main_agent) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 403
    page = strict.get("/login/")
    token = page.cookies["csrftoken"].value
    ok = strict.post(
        "/login/", {"method": "secret", "gw-secret": TOKEN, "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302


def test_unknown_login_method(client: Client) -> None:
    response = client.post("/login/", {"method": "magic"})
    assert response.status_code == 400
    assert b"Unknown login method." in response.content


# login as a Django user ----------------------------------------------------------------------
def test_django_user_login_and_admin_link(client: Client, main_agent) -> None:
    make_user("staff", "s3cret-pass-123", is_staff=True)
    response = client.post(
        "/login/", {"method": "user", "user-username": "staff", "user-password": "s3cret-pass-123"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert b'href="/admin/"' in page.content


def test_plain_user_and_token_sessions_get_no_admin_link(client: Client, main_agent) -> None:
    make_user()
    client.post(
        "/login/", {"method": "user", "user-username": "alice", "user-password": "s3cret-pass-123"}
    )
    assert b'href="/admin/"' not in client.get("/").content


def test_token_session_has_no_admin_link(token_client: Client) -> None:
    assert b'href="/admin/"' not in token_client.get("/").content


def test_wrong_or_inactive_user_is_refused(client: Client) -> None:
    make_user()
    make_user("bob", "s3cret-pass-123", is_active=False)
    for username, password in [("alice", "wrong"), ("bob", "s3cret-pass-123")]:
        response = client.post(
            "/login/", {"method": "user", "user-username": username, "user-password": password}
        )
        assert response.status_code == 400
        assert "_auth_user_id" not in client.session
        assert b"correct username and password" in response.content


# logout --------------------------------------------------------------------------------------
def test_logout_is_post_only_and_forgets_everything(token_client: Client) -> None:
    assert token_client.get("/logout/").status_code == 405
    response = token_client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert SESSION_FLAG not in token_client.session
    assert token_client.get("/").status_code == 302


# pages ---------------------------------------------------------------------------------------
def test_chat_page_carries_its_config_as_json(token_client: Client) -> None:
    page = token_client.get("/").content.decode()
    assert '<script id="ui-config" type="application/json">' in page
    assert '"wsPath": "/ws"' in page
    assert 'src="/static/ui/chat.js"' in page


def test_status_page_counts(token_client: Client) -> None:
    page = token_client.get("/status/")
    assert page.context["counts"]["agents"] == 1
    assert page.context["counts"]["sessions"] == 0


def test_static_files_are_found() -> None:
    from django.contrib.staticfiles import finders

    for name in (
        "app.css",
        "gateway.js",
        "chat.js",
        "status.js",
        "markdown.js",
        "answer.js",
        "page.js",
    ):
        assert finders.find(f"ui/{name}"), name
    for name in ("vendor/marked.esm.js", "vendor/purify.es.js"):
        head = Path(finders.find(f"ui/{name}")).read_text(encoding="utf-8")[:400]
        assert "License" in head or "license" in head, f"{name} lost its license header"


# agents --------------------------------------------------------------------------------------
def agent_post(**fields) -> dict:
    data = {"id": "writer", "name": "", "model": "", "system_prompt": "", "enabled": "on"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_create_agent(token_client: Client) -> None:
    response = token_client.post(
        "/agents/+new/",
        agent_post(model="wingman:echo", tools=["read_file", "write_file"], is_default="on"),
    )
    assert response.status_code == 302 and response["Location"] == "/agents/writer/"
    writer = Agent.objects.get(pk="writer")
    assert writer.tools == ["read_file", "write_file"] and writer.is_default and writer.enabled
    assert not Agent.objects.get(pk="main").is_default


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"id": "Bad Id"}, "id", "lowercase letters"),
        ({"id": "main"}, "id", "already exists"),
        ({"model": "gpt-4o"}, "model", "provider:model"),
        ({"tools": ["rm_rf"]}, "tools", "not one of the available choices"),
    ],
)
def test_create_agent_errors_are_next_to_the_field(
    token_client: Client, fields: dict, field: str, message: str
) -> None:
    response = token_client.post("/agents/+new/", agent_post(**fields))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert Agent.objects.count() == 1
    page = html.unescape(response.content.decode())
    block = page[page.index(f'data-field="{field}"') :]
    block = block[: block.index('<div class="field', 1)]  # up to the next field
    assert message in block, "the error is rendered with its field"


def test_edit_agent(token_client: Client) -> None:
    response = token_client.post(
        "/agents/main/",
        agent_post(id="ignored", model="wingman:slow", system_prompt="Be brief.", enabled=None),
    )
    assert response.status_code == 302
    main = Agent.objects.get(pk="main")
    assert (main.model, main.system_prompt, main.enabled) == ("wingman:slow", "Be brief.", False)
    assert not Agent.objects.filter(pk="ignored").exists(), "the id cannot be changed"


def test_edit_agent_error_keeps_the_stored_agent(token_client: Client) -> None:
    response = token_client.post("/agents/main/", agent_post(model="nope"))
    assert response.status_code == 400
    assert "provider:model" in " ".join(response.context["form"].errors["model"])
    assert Agent.objects.get(pk="main").model == "wingman:echo"


def test_unknown_agent_is_404(token_client: Client) -> None:
    assert token_client.get("/agents/ghost/").status_code == 404


def test_bindings_add_error_and_remove(token_client: Client) -> None:
    bad = token_client.post("/agents/main/bindings/", {"channel": "webui", "peer_kind": "dm"})
    assert bad.status_code == 400
    assert "go together" in " ".join(bad.context["binding_form"].errors["peer_id"])
    missing = token_client.post("/agents/main/bindings/", {"channel": ""})
    assert "channel" in missing.context["binding_form"].errors
    assert Binding.objects.count() == 0

    ok = token_client.post(
        "/agents/main/bindings/", {"channel": "webui", "peer_kind": "dm", "peer_id": "u1"}
    )
    assert ok.status_code == 302
    binding = Binding.objects.get()
    assert (binding.agent_id, binding.channel, binding.peer_id, binding.order) == (
        "main",
        "webui",
        "u1",
        0,
    )
    assert b"dm: u1" in token_client.get("/agents/main/").content
    assert token_client.get(f"/agents/main/bindings/{binding.pk}/delete/").status_code == 405
    assert token_client.post(f"/agents/other/bindings/{binding.pk}/delete/").status_code == 404
    assert token_client.post(f"/agents/main/bindings/{binding.pk}/delete/").status_code == 302
    assert Binding.objects.count() == 0


def test_delete_agent_but_never_the_last_nor_the_default(token_client: Client) -> None:
    refused = token_client.post("/agents/main/delete/", follow=True)
    assert b"the only agent cannot be deleted" in refused.content
    assert Agent.objects.filter(pk="main").exists()
    spare = Agent.objects.create(id="spare", model="wingman:echo")
    page = token_client.get("/agents/main/").content.decode()
    assert "This is the default agent: make another agent the default" in page
    default = token_client.post("/agents/main/delete/", {"force": "true"}, follow=True)
    assert "Not deleted: agent &#x27;main&#x27; is the default agent" in default.content.decode()
    assert Agent.objects.filter(pk="main", is_default=True).exists()
    agent_service.agent_make_default(agent=spare)
    assert token_client.post("/agents/main/delete/")["Location"] == "/agents/"
    assert list(Agent.objects.values_list("id", "is_default")) == [("spare", True)]


def test_delete_agent_with_sessions_only_with_the_box_ticked(token_client: Client) -> None:
    helper = Agent.objects.create(id="helper", model="wingman:echo")
    session_service.session_create(agent=helper, name="keep me")
    page = token_client.get("/agents/helper/").content.decode()
    assert "It has 1 session:" in page and 'name="force" value="true"' in page
    assert "AND its 1 session with all their messages and runs?" in page  # the box's question
    refused = token_client.post("/agents/helper/delete/", follow=True)
    text = refused.content.decode()
    assert "Not deleted: agent &#x27;helper&#x27; has 1 session(s)" in text
    assert "Tick “Also delete its sessions”" in text
    assert Agent.objects.filter(pk="helper").exists() and Session.objects.count() == 1
    deleted = token_client.post("/agents/helper/delete/", {"force": "true"})
    assert deleted["Location"] == "/agents/"
    assert not Agent.objects.filter(pk="helper").exists() and Session.objects.count() == 0


def test_agent_forms_need_csrf(main_agent) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.get("/login/")
    token = strict.cookies["csrftoken"].value
    strict.post("/login/", {"method": "secret", "gw-secret": TOKEN, "csrfmiddlewaretoken": token})
    assert strict.post("/agents/+new/", agent_post()).status_code == 403
    assert not Agent.objects.filter(pk="writer").exists()
