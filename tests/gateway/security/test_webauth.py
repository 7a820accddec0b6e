"""Browser WebSocket auth: the Control UI's session cookie, accepted only from an allowed
Origin (cross-site WebSocket hijacking refused); token clients need no Origin."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client as HttpClient

from gateway.protocol.errors import CloseCode
from gateway.security.webauth import SESSION_FLAG, BrowserCredentials, origin_allowed

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "127.0.0.1:18789"
OWN_ORIGIN = f"http://{HOST}"


@sync_to_async
def _user_session(*, active: bool = True) -> str:
    user = get_user_model().objects.create_user("alice", password="pw-alice", is_active=active)
    http = HttpClient()
    http.force_login(user)
    return http.cookies[settings.SESSION_COOKIE_NAME].value


@sync_to_async
def _session(data: dict) -> str:
    store = SessionStore()
    store.update(data)
    store.create()
    return store.session_key


def _headers(session_key: str | None, origin: str | None, host: str = HOST):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if session_key is not None:
        cookie = f"other=1; {settings.SESSION_COOKIE_NAME}={session_key}"
        headers.append((b"cookie", cookie.encode()))
    return headers


async def test_logged_in_user_cookie_from_own_origin_is_accepted(clients, wingman_auth):
    wingman_auth("token", token="s3cret")
    key = await _user_session()
    res = await clients(headers=_headers(key, OWN_ORIGIN)).handshake()
    assert res["ok"] is True


async def test_token_login_session_flag_is_accepted(clients, wingman_auth):
    wingman_auth("token", token="s3cret")
    key = await _session({SESSION_FLAG: True})
    assert (await clients(headers=_headers(key, OWN_ORIGIN)).handshake())["ok"] is True


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:9999", None, "null"])
async def test_valid_cookie_from_a_foreign_or_missing_origin_is_refused(
    clients, wingman_auth, origin
):
    wingman_auth("token", token="s3cret")
    key = await _user_session()
    c = clients(headers=_headers(key, origin))
    res = await c.handshake()
    assert res["ok"] is False
    assert res["error"]["code"] == "UNAUTHORIZED"
    assert "Origin" in res["error"]["message"]
    assert await c.expect_close() == CloseCode.POLICY_VIOLATION


async def test_configured_extra_origin_is_allowed(clients, wingman_auth, settings):
    wingman_auth("token", token="s3cret")
    settings.WINGMAN_ALLOWED_ORIGINS = ["https://gateway.tailnet.ts.net"]
    key = await _user_session()
    c = clients(headers=_headers(key, "https://gateway.tailnet.ts.net/"))
    assert (await c.handshake())["ok"] is True


@pytest.mark.parametrize("kind", ["anonymous", "inactive", "unknown-key"])
async def test_session_that_is_not_logged_in_is_refused(clients, wingman_auth, kind):
    wingman_auth("token", token="s3cret")
    if kind == "anonymous":
        key = await _session({"something": "else"})
    elif kind == "inactive":
        key = await _user_session(active=False)
    else:
        key = "x" * 32
    res = await clients(headers=_headers(key, OWN_ORIGIN)).handshake()
    assert res["ok"] is False and "not logged in" in res["error"]["message"]


async def test_changed_password_logs_the_socket_out(clients, wingman_auth):
    wingman_auth("token", token="s3cret")
    key = await _user_session()

    @sync_to_async
    def change_password():
        user = get_user_model().objects.get(username="alice")
        user.set_password("new")
        user.save()

    await change_password()
    assert (await clients(headers=_headers(key, OWN_ORIGIN)).handshake())["ok"] is False


async def test_token_client_with_no_origin_is_accepted(clients, wingman_auth):
    wingman_auth("token", token="s3cret")
    res = await clients(headers=_headers(None, None)).handshake(auth={"token": "s3cret"})
    assert res["ok"] is True


async def test_a_token_wins_over_a_foreign_cookie(clients, wingman_auth):
    """A token client is judged by its token, whatever cookie or Origin it carries."""
    wingman_auth("token", token="s3cret")
    key = await _user_session()
    c = clients(headers=_headers(key, "http://evil.example"))
    assert (await c.handshake(auth={"token": "s3cret"}))["ok"] is True
    bad = clients(headers=_headers(key, OWN_ORIGIN))
    assert (await bad.handshake(auth={"token": "wrong"}))["ok"] is False


async def test_refused_cookies_count_towards_the_lockout(clients, wingman_auth):
    from gateway.security import auth

    wingman_auth("token", token="s3cret")
    key = await _user_session()
    for _ in range(auth.MAX_FAILURES):
        c = clients(headers=_headers(key, "http://evil.example"))
        assert (await c.handshake())["ok"] is False
    res = await clients(headers=_headers(key, OWN_ORIGIN)).handshake()
    assert res["ok"] is False and res["error"]["retryAfterMs"] > 0


@pytest.mark.parametrize(
    ("origin", "ok"),
    [(None, True), (OWN_ORIGIN, True), ("http://evil.example", False), ("null", False)],
)
async def test_auth_mode_none_refuses_other_sites_pages(clients, wingman_auth, origin, ok):
    """No credentials on loopback is fine for local programs, not for a web page that the
    user has open in a browser (its socket carries that page's Origin)."""
    wingman_auth("none")
    c = clients(headers=_headers(None, origin))
    res = await c.handshake()
    assert res["ok"] is ok, res
    if not ok:
        assert "Origin" in res["error"]["message"]


def test_dns_rebinding_is_not_same_origin(settings):
    """evil.example re-pointed at 127.0.0.1: Origin and Host agree, but we do not answer
    to that host name."""
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    assert not origin_allowed("http://evil.example:18789", "evil.example:18789")
    assert origin_allowed("http://localhost:18789", "localhost:18789")


def test_origin_rules(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.WINGMAN_ALLOWED_ORIGINS = ["http://phone.example:8080"]
    assert origin_allowed("http://127.0.0.1:18789", "127.0.0.1:18789")
    assert origin_allowed("http://LOCALHOST:18790", "localhost:18790")
    assert origin_allowed("http://phone.example:8080", "127.0.0.1:18789")
    assert not origin_allowed("http://127.0.0.1:18789", "127.0.0.1:18790")
    assert not origin_allowed("https://127.0.0.1.evil.example", "127.0.0.1")
    assert not origin_allowed("null", "127.0.0.1:18789")
    assert not origin_allowed("file:///x", "127.0.0.1:18789")
    assert not origin_allowed(None, "127.0.0.1:18789")


def test_credentials_from_scope_parse_headers_without_io():
    scope = {"headers": _headers("abc", OWN_ORIGIN)}
    creds = BrowserCredentials.from_scope(scope)
    assert creds.session_key == "abc" and creds.same_origin and creds.present
    assert not BrowserCredentials.from_scope({"headers": [(b"cookie", b"bad;;=")]}).present
    assert not BrowserCredentials.from_scope({}).present
