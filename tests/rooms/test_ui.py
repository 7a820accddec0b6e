"""The rooms page with Django's test client: it needs a login, is in the main navigation,
hands its script the WebSocket config, and serves its script and styles. The page's
behaviour in a browser: test_ui_browser.py."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

TOKEN = "ui-token"


@pytest.fixture(autouse=True)
def token_mode(wingman_auth):
    wingman_auth("token", token=TOKEN)


def test_rooms_page_needs_a_login(client: Client) -> None:
    response = client.get("/rooms/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/rooms/"


def test_rooms_page_renders_with_its_config(client: Client) -> None:
    assert client.post("/login/", {"method": "secret", "gw-secret": TOKEN}).status_code == 302
    page = client.get("/rooms/")
    assert page.status_code == 200
    body = page.content.decode()
    assert '<a href="/rooms/" aria-current="page">Rooms</a>' in body
    config = json.loads(re.search(r'id="ui-config"[^>]*>(.*?)</script>', body, re.S).group(1))
    assert config["page"] == "rooms" and config["wsPath"] == "/ws"
    assert config["chatUrl"] == "/"
    for element in ("new-room", "room-columns", "live-member-list", "composer"):
        assert f'id="{element}"' in body
    for asset in ("/static/ui/rooms.js", "/static/ui/rooms.css"):
        assert asset in body
    # the chat page links to the rooms page too
    assert '<a href="/rooms/">Rooms</a>' in client.get("/").content.decode()
