"""The Control UI in real headless Chromium behind a proxy that refuses WebSocket upgrades:
it falls back to the HTTP bridge by itself and chats; ``?transport=http`` forces the bridge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway import browser as ui
from tests.gateway.bridge.proxy import NoUpgradeProxy
from tests.gateway.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e

#: The page fetched /bridge/send and /bridge/poll.
USED_BRIDGE = """() => {
  const names = performance.getEntriesByType('resource').map(e => e.name);
  return names.some(n => n.includes('/bridge/send')) && names.some(n => n.includes('/bridge/poll'));
}"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[ui.Browser]:
    yield from ui.browser_fixture()


@pytest.fixture
def ui_gateway(tmp_path, chromium) -> Iterator[GatewayProcess]:
    state = tmp_path / "ui-bridge"
    ui.write_config(state, fs_root=state / "work")
    gw = GatewayProcess(state, name="ui-bridge").start()
    yield gw
    gw.stop()


def test_control_ui_falls_back_to_the_bridge_behind_a_proxy(
    chromium: ui.Browser, ui_gateway: GatewayProcess
) -> None:
    chromium.errors.clear()
    with NoUpgradeProxy(ui_gateway.port) as proxy:
        base = f"http://127.0.0.1:{proxy.port}"
        page = chromium.page()
        ui.login_with_token(page, base)
        ui.wait_connected(page)
        assert proxy.refused >= 1  # the browser tried WebSocket first
        ui.create_session(page, "through a proxy", agent="tools")
        answer = ui.ask(page, "hello from behind a proxy")
        assert "hello from behind a proxy" in answer.inner_text()
        assert page.evaluate(USED_BRIDGE)
        # a reload reconnects (again through the bridge) and shows the conversation
        page.reload()
        ui.wait_connected(page)
        page.wait_for_selector("article.msg-assistant")
    chromium.close_contexts()
    # the browser itself logs the refused upgrade; nothing else may go wrong
    refused = "Error during WebSocket handshake: Unexpected response code: 403"
    assert not [e for e in chromium.errors if refused not in e], chromium.errors


def test_control_ui_transport_http_forces_the_bridge(
    chromium: ui.Browser, ui_gateway: GatewayProcess
) -> None:
    chromium.errors.clear()
    page = chromium.page()
    base = ui_gateway.http_url
    ui.login_with_token(page, base, next_path="/?transport=http")
    ui.wait_connected(page)
    answer = ui.ask(page, "bridge only")
    assert "bridge only" in answer.inner_text()
    assert page.evaluate(USED_BRIDGE)
    chromium.close_contexts()
