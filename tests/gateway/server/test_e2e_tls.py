"""TLS on the real server (uvicorn and daphne): ``gateway.tls.autoGenerate`` makes a
self-signed pair in the state dir and prints its SHA-256; wss:// and https:// (gateway and
Control UI ports, WebSocket and the HTTP bridge) work end to end with the pin; a wrong pin
is refused, and so is the certificate without one (``wingman gateway join`` as well)."""

from __future__ import annotations

import json
import re
import ssl

import httpx
import pytest

from tests.gateway.gateway_process import TOKEN, GatewayFactory
from tests.rooms.e2e import JoinProcess
from wingman import tls
from wingman.client import GatewayClient

pytestmark = pytest.mark.e2e

WRONG_PIN = ":".join(["AB"] * 32)


def tls_gateway(gateway_factory: GatewayFactory, tmp_path, server: str):
    state = tmp_path / f"tls-{server}"
    state.mkdir()
    config = {"gateway": {"tls": {"autoGenerate": True}}}
    (state / "wingman.config.json").write_text(json.dumps(config))
    return gateway_factory({"WINGMAN_ASGI_SERVER": server}, state_dir=state)


async def test_generated_certificate_serves_wss_and_https(
    gateway_factory: GatewayFactory, tmp_path, each_server: str
) -> None:
    gw = tls_gateway(gateway_factory, tmp_path, each_server)
    cert = gw.state_dir / tls.CERT_NAME
    assert cert.exists() and (gw.state_dir / tls.KEY_NAME).stat().st_mode & 0o077 == 0
    pin = tls.file_fingerprint(cert)
    printed = re.search(r"TLS certificate SHA-256: ([0-9A-F:]{95})", gw.log())
    assert printed and printed.group(1) == pin, gw.log_tail()
    assert f"listening on wss://127.0.0.1:{gw.port}/" in gw.log()

    wss = f"wss://127.0.0.1:{gw.port}/ws"
    async with GatewayClient(wss, token=TOKEN, tls_fingerprint=pin) as client:
        assert client.transport_used == "websocket"
        final = await client.agent("over tls", agent_id="main")
        assert final["result"]["text"] == "You said: over tls"
    async with GatewayClient(wss, token=TOKEN, tls_fingerprint=pin, transport="http") as client:
        assert client.transport_used == "http"
        assert (await client.call("health"))["ok"] is True

    context = await tls.client_context(f"https://127.0.0.1:{gw.port}/", pin)
    async with httpx.AsyncClient(verify=context) as http:
        for port in (gw.port, gw.ui_port):
            r = await http.get(f"https://127.0.0.1:{port}/health")
            assert r.status_code == 200 and r.json()["status"] == "healthy", r.text


async def test_pin_mismatch_and_unpinned_self_signed_are_refused(
    gateway_factory: GatewayFactory, tmp_path
) -> None:
    gw = tls_gateway(gateway_factory, tmp_path, "uvicorn")
    wss = f"wss://127.0.0.1:{gw.port}/ws"
    for transport in ("websocket", "http"):
        with pytest.raises(tls.PinMismatch):
            await GatewayClient(
                wss, token=TOKEN, tls_fingerprint=WRONG_PIN, transport=transport
            ).connect()
    with pytest.raises(ssl.SSLCertVerificationError):
        await GatewayClient(wss, token=TOKEN, transport="websocket").connect()
    with pytest.raises(ValueError):
        tls.normalize("not-a-fingerprint")


async def test_join_over_wss_with_the_pin_and_refused_with_a_wrong_one(
    gateway_factory: GatewayFactory, tmp_path
) -> None:
    gw = tls_gateway(gateway_factory, tmp_path, "uvicorn")
    wss = f"wss://127.0.0.1:{gw.port}/ws"
    pin = tls.file_fingerprint(gw.state_dir / tls.CERT_NAME)
    pinned = JoinProcess([wss, "--name", "pinned", "--tls-fingerprint", pin], dict(gw.env))
    wrong = JoinProcess([wss, "--name", "wrong", "--tls-fingerprint", WRONG_PIN], dict(gw.env))
    try:
        await pinned.expect(f"connected to {wss} over WebSocket")
        await pinned.expect("registered as pinned (nodeId ")
        got = await wrong.expect("connection failed: ")
        assert "certificate fingerprint mismatch" in got, got
    finally:
        pinned.stop()
        wrong.stop()


def test_tls_config_needs_files_or_autogenerate() -> None:
    from wingman.config import TlsConfig

    with pytest.raises(ValueError):
        TlsConfig.model_validate({"enabled": True})
    assert TlsConfig.model_validate({"autoGenerate": True}).on
    assert not TlsConfig().on
