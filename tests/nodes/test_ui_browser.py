"""The Control UI's Nodes and Devices pages in real headless Chromium against a real gateway
(tests/gateway/browser.py), with signed test nodes connected over real WebSockets
(tests/nodes/node_thread.py): a node's request appears live, is approved in the page and
the node shows paired and connected with its commands and host stats; an invoke from the
form returns the node's answer (or its error); untrusted names and output stay text;
devices list, revoke a token (it stops working), approve a pending device, remove."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway import browser as ui
from tests.gateway.gateway_process import TOKEN, GatewayProcess
from tests.nodes.node_thread import NodeThread, connect_once, run_async
from tests.nodes.openclaw_node import NodeHost, require_openclaw
from tests.nodes.signer import TestDevice

pytestmark = pytest.mark.e2e

EVIL_NAME = '<img src=x onerror="document.body.dataset.owned=1">'


@pytest.fixture(scope="module")
def chromium() -> Iterator[ui.Browser]:
    yield from ui.browser_fixture()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[GatewayProcess]:
    yield from ui.page_gateway(tmp_path_factory, "nodes-ui")


@pytest.fixture
def browser(chromium: ui.Browser, gateway: GatewayProcess, request) -> Iterator[ui.Browser]:
    yield from ui.checked_browser(chromium, gateway, request)


@pytest.fixture
def nodes() -> Iterator[list[NodeThread]]:
    """Started test nodes, stopped after the test."""
    started: list[NodeThread] = []
    yield started
    for node in started:
        node.stop()


def answer(command: str, params: dict[str, Any]) -> dict[str, Any]:
    """Like the node host: ``system.which`` finds every bin in /usr/bin; ``system.run``
    echoes its argv, and fails for ``false``."""
    if command == "system.which":
        return {
            "ok": True,
            "payloadJSON": json.dumps({"bins": {b: f"/usr/bin/{b}" for b in params["bins"]}}),
        }
    argv = params.get("command") or []
    if argv[:1] == ["false"]:
        return {"ok": False, "error": {"code": "EXIT_CODE", "message": "exited with 1"}}
    return {"ok": True, "payloadJSON": json.dumps({"exitCode": 0, "stdout": " ".join(argv[1:])})}


def open_nodes(browser: ui.Browser, gateway: GatewayProcess):
    """The nodes page, logged in and connected."""
    page = browser.page()
    ui.login_with_token(page, gateway.http_url, next_path="/nodes/")
    page.wait_for_selector("#conn-banner", state="hidden")
    return page


def row(page, table: str, node_id: str):
    return page.locator(f'#{table} tr[data-node="{node_id}"]')


def invoke(page, command: str, params: str) -> None:
    page.select_option("#invoke-command", command)
    page.fill("#invoke-params", params)
    page.click("#invoke-button")
    page.wait_for_function(
        "() => !document.getElementById('invoke-result').hidden"
        " || !document.getElementById('invoke-error').hidden"
    )


def test_nodes_page_pairs_a_node_shows_it_live_and_invokes(
    browser: ui.Browser, gateway: GatewayProcess, nodes: list[NodeThread]
) -> None:
    page = open_nodes(browser, gateway)
    page.wait_for_selector("#node-pending-empty", state="visible")
    assert page.is_disabled("#invoke-button")
    commands = ["system.which", "system.run"]
    node = NodeThread(gateway.url, name=EVIL_NAME, commands=commands, answer=answer).start()
    nodes.append(node)
    # the request shows up without a reload (node.pair.requested); the name is text
    pending = row(page, "node-pending", node.node_id)
    pending.wait_for()
    assert EVIL_NAME in pending.inner_text() and "runs programs" in pending.inner_text()
    assert page.locator("main img").count() == 0
    pending.locator("button[name='node.pair.approve']").click()
    paired = row(page, "nodes", node.node_id)
    paired.wait_for()
    page.wait_for_selector("#node-pending-empty", state="visible")
    assert paired.get_attribute("data-connected") == "true"
    text = paired.inner_text()
    assert "connected" in text and "system.which" in text and "system.run" in text, text
    assert EVIL_NAME in text and page.locator("main img").count() == 0
    paired.locator("text=2 CPUs").wait_for()  # host stats from node.event
    assert "memory 1.0 GB free of 4.0 GB" in paired.inner_text()
    # invoke from the form: the node's answer, its error, and a params mistake
    assert page.input_value("#invoke-node") == node.node_id
    invoke(page, "system.which", '{"bins": ["git"]}')
    assert '"git": "/usr/bin/git"' in page.inner_text("#invoke-result")
    assert node.invokes[-1] == ("system.which", {"bins": ["git"]})
    invoke(page, "system.run", '{"command": ["echo", "<b>bold</b>"]}')
    assert "<b>bold</b>" in page.inner_text("#invoke-result")
    assert page.locator("#invoke-result b").count() == 0
    invoke(page, "system.run", '{"command": ["false"]}')
    assert page.is_hidden("#invoke-result")
    assert page.inner_text("#invoke-error") == "UNAVAILABLE: EXIT_CODE: exited with 1"
    page.fill("#invoke-params", "{bins: [git]}")
    page.click("#invoke-button")
    assert "Params are not valid JSON" in page.inner_text("#invoke-error")
    assert len(node.invokes) == 3
    assert page.evaluate("document.body.dataset.owned") is None
    ui.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ui.ARTIFACTS / "control-ui-nodes.png"), full_page=True)
    # the node goes away: the page says so at once (presence) and offers it no more
    node.stop()
    nodes.remove(node)
    page.wait_for_selector(f'#nodes tr[data-node="{node.node_id}"][data-connected="false"]')
    assert "offline" in paired.inner_text() and "last seen" in paired.inner_text()
    assert page.is_disabled("#invoke-button")


def test_nodes_page_rejects_renames_and_removes(
    browser: ui.Browser, gateway: GatewayProcess, nodes: list[NodeThread]
) -> None:
    page = open_nodes(browser, gateway)
    keep = NodeThread(gateway.url, name="keeper", commands=["system.which"], answer=answer)
    drop = NodeThread(gateway.url, name="dropper", commands=["system.which"], answer=answer)
    nodes.extend([keep.start(), drop.start()])
    row(page, "node-pending", drop.node_id).wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "node-pending", drop.node_id).locator("button[name='node.pair.reject']").click()
    row(page, "node-pending", drop.node_id).wait_for(state="detached")
    assert row(page, "nodes", drop.node_id).count() == 0
    row(page, "node-pending", keep.node_id).locator("button[name='node.pair.approve']").click()
    row(page, "nodes", keep.node_id).wait_for()
    page.once("dialog", lambda dialog: dialog.accept("kept <b>box</b>"))
    row(page, "nodes", keep.node_id).locator("button[name='node.rename']").click()
    row(page, "nodes", keep.node_id).locator("strong", has_text="kept <b>box</b>").wait_for()
    assert (
        page.locator(f'#invoke-node option[value="{keep.node_id}"]')
        .inner_text()
        .startswith("kept <b>box</b>")
    )
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, "nodes", keep.node_id).locator("button:has-text('Remove')").click()
    row(page, "nodes", keep.node_id).wait_for(state="detached")


def test_devices_page_lists_revokes_approves_and_removes(
    browser: ui.Browser, gateway: GatewayProcess, nodes: list[NodeThread]
) -> None:
    node = NodeThread(gateway.url, name="box-1", commands=["system.which"], answer=answer)
    nodes.append(node.start())
    token = node.hello["payload"]["auth"]["deviceToken"]
    page = browser.page()
    ui.login_with_token(page, gateway.http_url, next_path="/devices/")
    device = page.locator(f'#devices tr[data-device="{node.node_id}"]')
    device.wait_for()
    cells = device.locator("td").all_inner_texts()
    assert cells[0].startswith("box-1") and node.node_id[:12] in cells[0], cells
    assert cells[1:3] == ["linux", "node"] and cells[6] == "issued", cells
    assert cells[4] != "—" and cells[5] != "—", cells  # first and last seen
    page.once("dialog", lambda dialog: dialog.accept())
    ui.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ui.ARTIFACTS / "control-ui-devices.png"), full_page=True)
    device.locator("button[name='device.token.revoke']").click()
    page.wait_for_selector(f'#devices tr[data-device="{node.node_id}"][data-token="none"]')
    # the revoked token no longer connects the device
    refused = run_async(lambda: connect_once(gateway.url, node.device, token=token))
    assert refused["error"]["code"] == "UNAUTHORIZED", refused
    # a paired node device asking for the operator role waits for approval (its own token)
    other = TestDevice()
    first = run_async(lambda: connect_once(gateway.url, other, commands=[]))
    own = first["payload"]["auth"]["deviceToken"]
    asked = run_async(
        lambda: connect_once(
            gateway.url, other, role="operator", scopes=["operator.read"], token=own
        )
    )
    assert asked["error"]["details"]["code"] == "PAIRING_REQUIRED", asked
    pending = page.locator(f'#device-pending tr[data-device="{other.device_id}"]')
    pending.wait_for()  # live: device.pair.requested
    assert pending.locator("td").nth(2).inner_text() == "operator"
    pending.locator("button[name='device.pair.approve']").click()
    pending.wait_for(state="detached")
    approved = page.locator(f'#devices tr[data-device="{other.device_id}"]')
    approved.locator("td:nth-child(3)", has_text="operator").wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    approved.locator("button[name='device.pair.remove']").click()
    approved.wait_for(state="detached")


def test_nodes_page_with_the_real_openclaw_node_host(
    browser: ui.Browser, gateway: GatewayProcess, tmp_path
) -> None:
    """The unmodified node host (``openclaw node run``): pending, approved in the page, its
    own host stats shown, and its real answers to invokes from the form."""
    require_openclaw()
    page = open_nodes(browser, gateway)
    host = NodeHost(tmp_path / "home", gateway.port, token=TOKEN, name="oc-ui-node")
    try:
        pending = page.locator("#node-pending tr", has_text="oc-ui-node")
        pending.wait_for(timeout=60_000)
        node_id = pending.get_attribute("data-node")
        assert "system.run" in pending.inner_text(), pending.inner_text()
        pending.locator("button[name='node.pair.approve']").click()
        paired = row(page, "nodes", node_id)
        page.wait_for_selector(f'#nodes tr[data-node="{node_id}"][data-connected="true"]')
        paired.locator("text=CPUs").wait_for(timeout=15_000)
        assert "memory" in paired.inner_text() and "disk" in paired.inner_text()
        page.select_option("#invoke-node", node_id)
        invoke(page, "system.which", '{"bins": ["sh"]}')
        assert '/sh"' in page.inner_text("#invoke-result"), page.inner_text("#invoke-error")
        invoke(page, "system.run", '{"command": ["echo", "hi from the page"]}')
        assert '"stdout": "hi from the page\\n"' in page.inner_text("#invoke-result")
    except Exception:
        print(host.output())
        raise
    finally:
        host.stop()
