"""Run now through the REST API and the admin's action on a real ``wingman gateway run``
process: the run executes on the gateway, lands in the routine's thread and shows in the
run history. (In process, on the test suite's shared-cache in-memory SQLite, a request that
reads while the run writes from another thread can fail with "table is locked"; the real
gateway's database waits instead.)"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway import browser as ui
from tests.gateway.conftest import _GATEWAYS
from tests.gateway.gateway_process import TOKEN, GatewayProcess

pytestmark = pytest.mark.e2e

STANDUP = {"name": "standup", "agentId": "main", "cron": "0 9 * * 1-5", "prompt": "news please"}


@pytest.fixture(scope="module")
def module_gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    state = tmp_path_factory.mktemp("routines-surfaces")
    agents = [{"id": "main", "name": "Main", "default": True, "model": "wingman:echo"}]
    (state / "wingman.config.json").write_text(json.dumps({"agents": {"list": agents}}))
    gw = GatewayProcess(state, name="routines-surfaces").start()
    ui.create_superuser(gw)
    yield gw
    gw.stop()


@pytest.fixture
def gateway(module_gateway: GatewayProcess, request) -> GatewayProcess:
    request.node.stash[_GATEWAYS] = [module_gateway]
    return module_gateway


@pytest.fixture
def api(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=gateway.http_url, headers=headers, timeout=15) as client:
        yield client


def settled_runs(api: httpx.Client, routine_id: str, count: int) -> list[dict]:
    """The routine's runs once ``count`` of them ended (bounded wait)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        runs = api.get(f"/api/routines/{routine_id}/runs").json()["results"]
        if len(runs) >= count and all(r["status"] != "running" for r in runs):
            return runs
        time.sleep(0.1)
    raise AssertionError(f"runs did not end: {runs}")


def test_rest_run_now(api: httpx.Client):
    routine = api.post("/api/routines", json=STANDUP).json()
    started = api.post(f"/api/routines/{routine['id']}/run")
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["status"] == "accepted" and body["sessionKey"] == routine["sessionKey"]
    [run] = settled_runs(api, routine["id"], 1)
    assert run["runId"] == body["runId"] and run["status"] == "ok", run
    assert run["trigger"] == "manual" and run["summary"]
    messages = api.get(f"/api/sessions/{routine['sessionKey']}/messages").json()
    messages = messages.get("results", messages)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    after = api.get(f"/api/routines/{routine['id']}").json()
    assert after["lastStatus"] == "ok" and after["lastRunId"] == run["runId"]
    assert api.post("/api/routines/nope/run").status_code == 404


def test_admin_run_now_action(gateway: GatewayProcess, api: httpx.Client):
    routine = api.post("/api/routines", json=STANDUP | {"name": "by admin"}).json()
    with httpx.Client(base_url=gateway.http_url, timeout=15) as browser:
        login = browser.get("/admin/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        form = {"username": ui.USER, "password": ui.USER_PASSWORD, "csrfmiddlewaretoken": csrf}
        form["next"] = "/admin/"
        assert browser.post("/admin/login/", data=form).status_code == 302
        changelist = "/admin/routines/routine/"
        page = browser.get(changelist)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        action = {"action": "run_now", "_selected_action": routine["id"]}
        action["csrfmiddlewaretoken"] = csrf
        done = browser.post(changelist, data=action, follow_redirects=True)
        assert done.status_code == 200 and "started." in done.text, done.text[-2000:]
    [run] = settled_runs(api, routine["id"], 1)
    assert run["status"] == "ok" and run["trigger"] == "manual"
