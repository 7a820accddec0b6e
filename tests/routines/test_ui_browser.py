"""The Control UI routines page in real headless Chromium against a real gateway
(tests/gateway/browser.py): create with a preset and a time zone, a bad CRON refused at its
field, next runs, run now, the run in the history, its thread opened in the chat and
continued like any chat, disable, delete."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway import browser as ui
from tests.gateway.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> Iterator[ui.Browser]:
    yield from ui.browser_fixture()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[GatewayProcess]:
    yield from ui.page_gateway(tmp_path_factory, "routines-ui")


@pytest.fixture
def browser(chromium: ui.Browser, gateway: GatewayProcess, request) -> Iterator[ui.Browser]:
    yield from ui.checked_browser(chromium, gateway, request)


def test_routines_page(browser: ui.Browser, gateway: GatewayProcess) -> None:
    base = gateway.http_url
    page = browser.page()
    ui.login_with_token(page, base, next_path="/routines/")
    assert "No routines yet." in page.locator("#routines").inner_text()
    page.click("text=New routine")
    page.fill("#id_name", "Morning news")
    page.select_option("#id_agent_id", "tools")
    page.fill("#id_prompt", "news summary")
    # only the chosen kind's field shows
    assert page.is_hidden('[data-field="every"]') and page.is_visible('[data-field="cron"]')
    page.fill("#id_cron", "99 99 * * *")
    page.select_option("#id_timezone", "Europe/Berlin")
    page.click("#routine-form button[type=submit]")
    error = page.locator('.field[data-field="cron"] .field-error')
    assert "99" in error.inner_text()
    page.select_option("#cron-preset", "0 9 * * 1-5")
    assert page.input_value("#id_cron") == "0 9 * * 1-5"
    assert page.input_value("#id_timezone") == "Europe/Berlin"  # kept after the error
    page.click("#routine-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Routine 'Morning news' created.")
    next_runs = page.locator("#next-runs li")
    assert next_runs.count() == 5
    assert all(" 09:00 CE" in text for text in next_runs.all_inner_texts())  # CET/CEST
    assert page.is_visible("#open-thread")  # the thread exists from the start

    page.click("#routine-run button")
    page.wait_for_selector(".flash >> text=started in agent:tools:routine:")
    for _ in range(50):  # the run ends within seconds; the page shows it after a reload
        if page.locator("#runs .run-status").first.inner_text() == "ok":
            break
        page.wait_for_timeout(200)
        page.reload()
    assert page.locator("#runs .run-status").first.inner_text() == "ok"
    assert "ok" in page.locator("#last-run").inner_text()

    page.click("#open-thread")
    ui.wait_connected(page)
    assert page.locator("#session-name").inner_text() == "Routine: Morning news"
    page.wait_for_selector(".msg-user >> text=news summary")
    assert page.locator("article.msg-assistant").count() == 1
    answer = ui.ask(page, "and the weather?")
    assert answer.inner_text().strip()
    assert page.locator("article.msg-assistant").count() == 2

    page.go_back()
    page.wait_for_selector("#routine-toggle")
    page.reload()
    page.click("#routine-toggle button")
    page.wait_for_selector(".flash >> text=disabled.")
    assert "disabled" in page.locator("#routine-state").inner_text()
    assert page.locator("#next-runs li").all_inner_texts() == ["none (disabled)"]
    page.goto(f"{base}/routines/")
    row = page.locator("tr[data-routine]")
    assert row.count() == 1 and "disabled" in row.inner_text()
    row.locator("a").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#routine-delete button")
    page.wait_for_selector(".flash >> text=deleted (its thread stays)")
    assert page.locator("tr[data-routine]").count() == 0
