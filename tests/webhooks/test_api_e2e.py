"""End to end on the real gateway process: ``POST /api/webhooks/<id>/test`` and
``wingman webhooks test`` send a sample delivery over HTTP through the real
``/webhooks/<id>`` endpoint — accepted (202, a run that answers in the webhook's thread,
a delivery log line) or refused exactly as any sender would be (disabled, address not
allowed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import each_server  # noqa: F401
from tests.gateway.gateway_process import TOKEN, GatewayProcess, run_cli

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def write_agents(state_dir: Path) -> None:
    config = {"agents": {"list": [{"id": "main", "default": True, "model": "wingman:echo"}]}}
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "wingman.config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture
def server(gateway_factory, tmp_path) -> GatewayProcess:
    """A gateway (default ASGI server) with the echo agent ``main``."""
    state = tmp_path / "gw"
    write_agents(state)
    return gateway_factory(state_dir=state)


@pytest.fixture
def server_of_each(gateway_factory, tmp_path, each_server) -> GatewayProcess:  # noqa: F811
    """On each ASGI server: the test delivery goes to the address the request came in on
    (the ASGI scope's ``server``), which both servers fill. The first test checks that on
    both; the others (nothing server-specific) run on the default one."""
    state = tmp_path / "gw"
    write_agents(state)
    return gateway_factory({"WINGMAN_ASGI_SERVER": each_server}, state_dir=state)


@pytest.fixture
def api(server: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url, headers=AUTH, timeout=15.0) as client:
        yield client


@pytest.fixture
def api_of_each(server_of_each: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_of_each.http_url, headers=AUTH, timeout=15.0) as client:
        yield client


def finished_run(api: httpx.Client, run_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/api/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s")


def test_a_test_delivery_goes_through_the_real_endpoint(api_of_each):
    api = api_of_each
    created = api.post("/api/webhooks", json={"id": "ci", "name": "CI", "agentId": "main"})
    assert created.status_code == 201, created.text

    res = api.post("/api/webhooks/ci/test")
    assert res.status_code == 200, res.text
    result = res.json()
    assert result["status"] == 202 and result["accepted"] is True, result
    assert result["url"].endswith("/webhooks/ci")
    assert result["sessionKey"] == "agent:main:webhook:ci"
    assert result["response"]["ok"] is True and result["response"]["runId"] == result["runId"]

    run = finished_run(api, result["runId"])
    assert run["status"] == "ok", run
    messages = api.get("/api/sessions/agent:main:webhook:ci/messages").json()["results"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "test delivery" in messages[0]["content"]

    log = api.get("/api/webhooks/ci/deliveries").json()["results"]
    assert [(d["status"], d["runId"]) for d in log] == [(202, result["runId"])]
    assert log[0]["deliveryId"] == result["deliveryId"]
    assert api.get("/api/webhooks/ci").json()["lastTriggeredAt"] is not None


def test_a_signed_gmail_test_delivery(api):
    body = {"id": "mail", "name": "Mail", "agentId": "main", "preset": "gog-gmail"}
    api.post("/api/webhooks", json=body | {"requireSignature": True}).raise_for_status()
    result = api.post("/api/webhooks/mail/test").json()
    assert result["status"] == 202, result
    log = api.get("/api/webhooks/mail/deliveries").json()["results"]
    assert log[0]["signed"] is True and log[0]["deliveryId"] == result["deliveryId"]
    finished_run(api, result["runId"])
    messages = api.get("/api/sessions/agent:main:webhook:mail/messages").json()["results"]
    assert "Test delivery of webhook mail" in messages[0]["content"]  # the Gmail summary


def test_a_refused_test_delivery_reports_the_endpoint_answer(api):
    api.post("/api/webhooks", json={"id": "ci", "name": "CI", "agentId": "main"})
    api.patch("/api/webhooks/ci", json={"enabled": False}).raise_for_status()
    disabled = api.post("/api/webhooks/ci/test").json()
    assert (disabled["status"], disabled["accepted"], disabled["runId"]) == (403, False, None)

    api.patch("/api/webhooks/ci", json={"enabled": True, "ipAllowlist": ["192.0.2.0/24"]})
    walled = api.post("/api/webhooks/ci/test").json()
    assert walled["status"] == 403 and walled["response"]["ok"] is False
    log = api.get("/api/webhooks/ci/deliveries").json()["results"]
    assert [d["status"] for d in log] == [403, 403] and all(d["runId"] is None for d in log)
    assert api.get("/api/runs").json()["count"] == 0
    assert api.post("/api/webhooks/nope/test").status_code == 404


def test_the_cli_test_command_against_the_running_gateway(server, api):
    api.post("/api/webhooks", json={"id": "ci", "name": "CI", "agentId": "main"})
    done = run_cli(["webhooks", "test", "ci", "--url", server.http_url], server.env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("202 accepted: run ") and "agent:main:webhook:ci" in done.stdout

    api.patch("/api/webhooks/ci", json={"enabled": False})
    refused = run_cli(["webhooks", "test", "ci", "--url", server.http_url, "--json"], server.env)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["status"] == 403
