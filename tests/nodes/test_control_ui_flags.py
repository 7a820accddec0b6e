"""``controlUi.pairingRequired`` / ``allowInsecureAuth`` for browser clients (a WebSocket
whose upgrade carries an ``Origin``) that are not on loopback."""

from __future__ import annotations

import pytest

from tests.nodes.conftest import TOKEN
from tests.nodes.signer import TestDevice

pytestmark = pytest.mark.django_db(transaction=True)

REMOTE = ("10.0.0.9", 41000)
HEADERS = [(b"origin", b"http://10.0.0.9:18789"), (b"host", b"10.0.0.9:18789")]


@pytest.fixture
def control_ui(settings):
    def apply(**changes):
        ui = settings.WINGMAN.control_ui.model_copy(update=changes)
        settings.WINGMAN = settings.WINGMAN.model_copy(update={"control_ui": ui})

    return apply


async def test_remote_browser_without_device_needs_allow_insecure_auth(
    clients, token_auth, control_ui
):
    c = clients(client=REMOTE, headers=HEADERS)
    res = await c.handshake(auth={"token": TOKEN})
    assert res["error"]["code"] == "NOT_PAIRED", res
    assert res["error"]["details"]["code"] == "DEVICE_IDENTITY_REQUIRED"
    assert await c.expect_close() == 1008
    # a loopback browser and a non-browser client are not concerned
    local = clients(headers=[(b"origin", b"http://127.0.0.1:18789"), (b"host", b"127.0.0.1:18789")])
    assert (await local.handshake(auth={"token": TOKEN}))["ok"]
    cli = clients(client=REMOTE)
    assert (await cli.handshake(auth={"token": TOKEN}))["ok"]
    control_ui(allow_insecure_auth=True)
    c2 = clients(client=REMOTE, headers=HEADERS)
    assert (await c2.handshake(auth={"token": TOKEN}))["ok"]


async def test_remote_browser_device_pairing_follows_pairing_required(
    clients, token_auth, control_ui
):
    dev = TestDevice()
    c = clients(client=REMOTE, headers=HEADERS)
    challenge = await c.open()
    await c.send(dev.connect(challenge["payload"], role="operator", scopes=["operator.read"]))
    res = await c.recv_res()
    assert res["error"]["details"]["code"] == "PAIRING_REQUIRED", res
    control_ui(pairing_required=False)
    c2 = clients(client=REMOTE, headers=HEADERS)
    challenge = await c2.open()
    await c2.send(dev.connect(challenge["payload"], role="operator", scopes=["operator.read"]))
    res = await c2.recv_res()
    assert res["ok"] and res["payload"]["auth"]["deviceToken"], res
