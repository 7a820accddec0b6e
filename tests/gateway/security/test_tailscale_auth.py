"""``gateway.auth.allowTailscale`` on a real gateway: a WebSocket or HTTP request from
loopback (where ``tailscale serve`` proxies from) carrying Tailscale identity headers is
authenticated without the token only when the fake tailscaled's LocalAPI ``whois`` of the
forwarded address names the same login; never with allowTailscale off, never for a login
tailscaled does not confirm, never from a non-loopback peer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.test import override_settings

from gateway.security.tailscale import TailscaleIdentity, refusal
from tests.gateway.discovery.fake_tailscale import FakeTailscaled, status_json, whois_json
from tests.gateway.gateway_process import GatewayProcess, connect_params, ws_client

CALLER = "100.101.102.103"
ALICE = "alice@example.com"


def ts_headers(login: str = ALICE, caller: str = CALLER) -> dict[str, str]:
    return {
        "Tailscale-User-Login": login,
        "Tailscale-User-Name": "Alice",
        "X-Forwarded-For": caller,
    }


@pytest.fixture(scope="module")
def tailscaled(tmp_path_factory):
    root = tmp_path_factory.mktemp("tsd")
    daemon = FakeTailscaled(root / "tailscaled.sock", status_json([]))
    daemon.whois[CALLER] = whois_json(CALLER, ALICE, "Alice")
    yield daemon
    daemon.close()


def start_gateway(root, tailscaled, *, allow: bool) -> GatewayProcess:
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "gateway": {"auth": {"allowTailscale": allow}},
        "discovery": {"tailscale": {"socket": str(tailscaled.path)}},
    }
    (root / "wingman.config.json").write_text(json.dumps(config))
    return GatewayProcess(root, name=f"ts-auth-{allow}").start()


@pytest.fixture(scope="module")
def gateway(tailscaled, tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("allow"), tailscaled, allow=True)
    yield gw
    gw.stop()


async def connect_without_token(gw: GatewayProcess, headers: dict[str, str]):
    """``connect`` with no token; (ok?, payload or error)."""
    async with ws_client(gw.url, additional_headers=headers) as c:
        frame = await c.call("connect", connect_params(token=None))
        return frame["ok"], frame.get("payload") or frame.get("error")


@pytest.mark.e2e
async def test_a_confirmed_tailscale_identity_connects_without_the_token(gateway, tailscaled):
    ok, payload = await connect_without_token(gateway, ts_headers())
    assert ok, payload
    assert payload["type"] == "hello-ok"
    assert f"/localapi/v0/whois?addr={CALLER}" in [p for p, _ in tailscaled.requests]


@pytest.mark.e2e
async def test_a_login_tailscaled_does_not_confirm_is_refused(gateway):
    ok, error = await connect_without_token(gateway, ts_headers(login="mallory@example.com"))
    assert not ok
    assert error["code"] == "UNAUTHORIZED"
    assert "'mallory@example.com' not confirmed by tailscaled" in error["message"]


@pytest.mark.e2e
async def test_an_address_tailscaled_does_not_know_is_refused(gateway):
    ok, error = await connect_without_token(gateway, ts_headers(caller="100.64.9.9"))
    assert not ok and error["code"] == "UNAUTHORIZED", error


@pytest.mark.e2e
async def test_without_identity_headers_the_token_is_still_needed(gateway):
    ok, error = await connect_without_token(gateway, {})
    assert not ok and "token missing" in error["message"], error


@pytest.mark.e2e
def test_http_stats_accepts_a_confirmed_identity_only(gateway):
    def get(headers: dict[str, str]) -> int:
        req = urllib.request.Request(f"{gateway.http_url}/stats", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert get(ts_headers()) == 200
    assert get(ts_headers(login="mallory@example.com")) == 401
    assert get({}) == 401


@pytest.mark.e2e
async def test_with_allow_tailscale_off_the_headers_are_ignored(tailscaled, tmp_path):
    gw = start_gateway(tmp_path / "off", tailscaled, allow=False)
    try:
        ok, error = await connect_without_token(gw, ts_headers())
        assert not ok
        assert "allowTailscale is off" in error["message"], error
    finally:
        gw.stop()


def test_headers_from_a_tailnet_peer_are_never_trusted(settings):
    """Only the local proxy (loopback) may speak for a Tailscale user."""
    peer = TailscaleIdentity.from_headers(
        {"tailscale-user-login": ALICE, "x-forwarded-for": CALLER}, "100.101.102.103"
    )
    local = TailscaleIdentity.from_headers(
        {"tailscale-user-login": ALICE, "x-forwarded-for": CALLER}, "127.0.0.1"
    )
    wingman = settings.WINGMAN.model_copy(update={"allow_tailscale": True})
    with override_settings(WINGMAN=wingman):
        assert refusal(peer) == (
            "Tailscale identity headers are trusted only from the local tailscale serve"
        )
        assert refusal(local) is None
        no_caller = TailscaleIdentity.from_headers({"tailscale-user-login": ALICE}, "127.0.0.1")
        assert "X-Forwarded-For" in (refusal(no_caller) or "")
