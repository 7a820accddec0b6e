"""The Nodes and Devices pages as HTTP: login required, the CSP, the nav, and the page's
script and config (the pages themselves are driven in tests/nodes/test_ui_browser.py)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

TOKEN = "ui-token"
PAGES = {"/nodes/": "ui/nodes.js", "/devices/": "ui/devices.js"}


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=TOKEN)


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == f"/login/?next={path}"


@pytest.mark.parametrize(("path", "script"), PAGES.items())
def test_pages_load_their_script_under_the_csp(client: Client, path: str, script: str) -> None:
    assert client.post("/login/", {"method": "secret", "gw-secret": TOKEN}).status_code == 302
    response = client.get(path)
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    html = response.content.decode()
    assert f'src="/static/{script}"' in html
    assert f'href="{path}" aria-current="page"' in html  # the nav marks the page
    marker = '<script id="ui-config" type="application/json">'
    start = html.index(marker) + len(marker)
    config = json.loads(html[start : html.index("</script>", start)])
    assert config["page"] == path.strip("/") and config["wsPath"] == "/ws"
