"""Errors of the HTTP side through Django's test client (real URLconf and middleware): bad
bodies on the API are 400/413 JSON and log no ERROR; 400/403/404/500 are ``{detail, code}``
JSON under /api/ and for clients that do not ask for HTML, Django's pages for browsers.
The real server's answers: tests/agents/test_api_e2e.py."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client, RequestFactory

from agents.models import Run
from gateway import http_errors

pytestmark = pytest.mark.django_db

TOKEN = "errors-token"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=TOKEN)


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def error_body(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = json.loads(response.content)
    assert set(body) == {"detail", "code"}, body
    return body


def test_deeply_nested_json_is_a_400(client, caplog):
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/runs", deep, content_type="application/json", **AUTH)
    assert response.status_code == 400
    body = error_body(response)
    assert body["code"] == "parse_error" and "nested too deeply" in body["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not Run.objects.exists()


@pytest.mark.parametrize("path", ["/api/runs", "/api/agents", "/login/"])
def test_a_body_over_the_limit_is_a_413_and_no_error_is_logged(client, caplog, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"message": "x" * 20_000})
    response = client.post(path, body, content_type="application/json", **AUTH)
    assert response.status_code == 413
    assert error_body(response) == {
        "detail": "request body over 10000 bytes",
        "code": "PAYLOAD_TOO_LARGE",
    }
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not Run.objects.exists()
    # just under the limit is read as usual (here: refused by validation, not by size)
    small = client.post(path, json.dumps({"x": "y" * 9_000}), "application/json", **AUTH)
    assert small.status_code != 413


def test_a_browser_gets_a_page_for_a_body_over_the_limit(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = client.post("/login/", {"method": "secret", "gw-secret": "x" * 2_000}, **BROWSER)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/api/nothing", "/api/runs/x/nothing", "/api/v2/agents"])
def test_unrouted_api_paths_are_404_json(client, path):
    response = client.get(path, **AUTH, **BROWSER)  # even for a browser: it is the API
    assert response.status_code == 404
    assert error_body(response) == {"detail": f"no such resource: {path}", "code": "not_found"}
    # a routed view's own 404 is DRF's (JSON, or the browsable API for a browser)
    missing = client.get("/api/agents/nobody", **AUTH)
    assert missing.status_code == 404 and error_body(missing)["code"] == "not_found"


def test_404_elsewhere_is_json_for_scripts_and_a_page_for_browsers(client):
    scripted = client.get("/no/such/page", HTTP_ACCEPT="*/*")
    assert scripted.status_code == 404
    assert error_body(scripted) == {
        "detail": "no such resource: /no/such/page",
        "code": "not_found",
    }
    browser = client.get("/no/such/page", **BROWSER)
    assert browser.status_code == 404 and browser["Content-Type"].startswith("text/html")


def test_a_disallowed_host_is_a_400_json(client):
    response = client.get("/api/health", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert error_body(response)["code"] == "bad_request"


def test_a_form_post_without_csrf_is_a_403_json_for_scripts():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"method": "secret", "gw-secret": TOKEN})
    assert response.status_code == 403
    body = error_body(response)
    assert body["code"] == "permission_denied" and body["detail"].startswith("CSRF failed")
    browser = client.post("/login/", {"method": "secret", "gw-secret": TOKEN}, **BROWSER)
    assert browser.status_code == 403 and browser["Content-Type"].startswith("text/html")


def test_500_is_json_for_the_api_and_a_page_for_browsers():
    factory = RequestFactory()
    api = http_errors.server_error(factory.get("/api/runs", **BROWSER))
    assert api.status_code == 500
    assert error_body(api)["code"] == "server_error"
    page = http_errors.server_error(factory.get("/", **BROWSER))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
