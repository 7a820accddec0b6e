"""The Control UI webhooks page in real headless Chromium against the real gateway
(tests/gateway/browser.py): create a webhook, copy its endpoint URL, use the secret shown
once, send a test delivery, see the deliveries with their outcome, open the thread and find
the agent's answer, disable it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.gateway import browser as ui
from tests.gateway.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> Iterator[ui.Browser]:
    yield from ui.browser_fixture()


@pytest.fixture(scope="module")
def ui_gateway(tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[GatewayProcess]:
    yield from ui.page_gateway(tmp_path_factory, "webhooks-ui")


@pytest.fixture
def browser(
    chromium: ui.Browser, ui_gateway: GatewayProcess, request: pytest.FixtureRequest
) -> Iterator[ui.Browser]:
    yield from ui.checked_browser(chromium, ui_gateway, request)


def test_create_copy_deliver_open_the_thread_disable(browser: ui.Browser, ui_gateway) -> None:
    base = ui_gateway.http_url
    page = browser.page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    ui.login_with_token(page, base, next_path="/integrations/webhooks/")
    assert "No webhooks yet." in page.locator("#webhooks").inner_text()

    page.click("text=New webhook")
    page.fill("#id_name", "Build alerts")
    page.select_option("#id_agent_id", "tools")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_url(f"{base}/integrations/webhooks/build-alerts/")

    endpoint = f"{base}/webhooks/build-alerts"
    assert page.locator("#endpoint-url").inner_text() == endpoint
    secret = page.locator("#secret-value").inner_text()
    assert secret.startswith("whsec_")
    assert (
        f"--hook-url {endpoint} --hook-token {secret}" in page.locator("#gog-command").inner_text()
    )
    assert f"Authorization: Bearer {secret}" in page.locator("#curl-example").inner_text()

    copy = page.locator("button[data-copy=endpoint-url]")
    copy.click()
    page.wait_for_function("b => b.textContent === 'Copied'", arg=copy.element_handle())
    assert page.evaluate("navigator.clipboard.readText()") == endpoint

    # the secret shown once works on the real endpoint, as the curl example sends it
    sent = httpx.post(
        endpoint,
        json={"message": "hello from outside"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert sent.status_code == 202, sent.text

    page.click("#webhook-test button[type=submit]")
    flash = page.locator(".flash li").first
    flash.wait_for()
    assert flash.inner_text().startswith("Test delivery accepted (202): run ")
    assert page.locator("#webhook-secret").count() == 0, "the secret is shown once only"
    outcomes = page.locator("#deliveries tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert outcomes == ["202", "202"]

    # a sender's delivery shows up while the page is open (a refused one too), no reload
    wrong = httpx.post(endpoint, json={}, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    page.wait_for_selector("#deliveries tbody tr:first-child[data-status='401']")
    assert page.locator("#deliveries tbody tr").count() == 3
    assert "202" in page.locator("#deliveries tbody tr").nth(1).inner_text()

    page.click("#open-thread")
    page.wait_for_url(lambda url: "session" in parse_qs(urlsplit(url).query))
    assert parse_qs(urlsplit(page.url).query)["session"] == ["agent:tools:webhook:build-alerts"]
    ui.wait_connected(page)
    page.wait_for_function("() => document.querySelectorAll('article.msg-assistant').length >= 2")
    thread = page.locator(".msg-user").all_inner_texts()
    assert any("hello from outside" in text for text in thread), thread
    assert any("test delivery" in text for text in thread), thread

    page.goto(f"{base}/integrations/webhooks/build-alerts/")
    page.click("#webhook-toggle button[type=submit]")
    page.wait_for_selector("h1 .pill-off")
    page.click("#webhook-test button[type=submit]")
    refused = page.locator(".flash li.flash-error")
    refused.wait_for()
    assert refused.inner_text().startswith("Test delivery refused (403)")
    assert page.locator("#deliveries tbody tr").first.get_attribute("data-status") == "403"
