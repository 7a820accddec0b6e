"""The Control UI in real headless Chromium against the real gateway (tests/gateway/browser.py).

One gateway and one browser serve the module (agents from ``browser.write_config``: ``main``
on the slow offline model, ``tools`` on the fast one with ``list_files``); the reconnect test
runs its own gateway because it restarts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway import browser as ui
from tests.gateway.conftest import _GATEWAYS
from tests.gateway.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> Iterator[ui.Browser]:
    yield from ui.browser_fixture()


@pytest.fixture(scope="module")
def ui_gateway(tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[GatewayProcess]:
    state = tmp_path_factory.mktemp("ui-gateway")
    ui.write_config(state, fs_root=state / "work")
    (state / "work" / "project").mkdir(parents=True)
    (state / "work" / "project" / "notes.txt").write_text("hello", encoding="utf-8")
    gw = GatewayProcess(state, name="ui-gateway").start()
    ui.create_superuser(gw)
    yield gw
    gw.stop()


@pytest.fixture
def browser(
    chromium: ui.Browser, ui_gateway: GatewayProcess, request: pytest.FixtureRequest
) -> Iterator[ui.Browser]:
    """The module's browser; fresh cookies per test, no JavaScript error allowed."""
    yield from ui.checked_browser(chromium, ui_gateway, request)


@pytest.fixture
def base(ui_gateway: GatewayProcess) -> str:
    return ui_gateway.http_url


def test_login_stream_stop_history_rename_delete(browser: ui.Browser, base: str) -> None:
    page = browser.page()
    page.goto(f"{base}/")
    assert "/login/" in page.url, "the chat page must ask for a login first"
    ui.login_with_token(page, base)
    ui.wait_connected(page)
    key = ui.create_session(page, "Browser chat")
    assert key.startswith("agent:main:session:"), key
    assert page.locator("#session-list li[aria-current=true] .s-name").inner_text() == (
        "Browser chat"
    )

    # the answer streams in: several growing intermediate states, not only the final one
    ui.send(page, "/stream 30")
    answer = ui.last_answer(page).locator(".md")
    states = ui.sample_growth(
        answer.inner_text, until=lambda text: text.strip().endswith("t29"), seconds=15
    )
    partial = [s for s in states if s.strip() and not s.strip().endswith("t29")]
    assert len(partial) >= 3, f"answer did not stream (states seen: {states})"
    lengths = [len(s) for s in states]
    assert lengths == sorted(lengths), f"answer shrank while streaming: {states}"
    ui.wait_idle(page)

    # a markdown answer (the echo model repeats the prompt), for the README screenshot
    answer = ui.ask(page, "Streaming works: **bold**, `code` and a list:\n\n- one\n- two")
    assert answer.locator("strong").inner_text() == "bold"
    assert answer.locator("li").count() == 2
    ui.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ui.ARTIFACTS / "control-ui-chat.png"))

    # Stop mid-answer: the partial text stays, the page goes back to idle
    ui.send(page, "/stream 400")
    page.wait_for_selector("#stop-button:visible")
    ui.sample_growth(
        ui.last_answer(page).locator(".md").inner_text,
        until=lambda text: len(text.split()) >= 5,
        seconds=10,
    )
    page.click("#stop-button")
    ui.wait_idle(page)
    stopped = ui.last_answer(page)
    assert stopped.locator(".msg-note").inner_text() == "Stopped."
    kept = stopped.locator(".md").inner_text().split()
    assert 5 <= len(kept) < 400, f"partial answer not kept: {kept[-3:]}"
    assert kept[-1] != "t399"

    # reload: the same session, its whole history
    page.reload()
    ui.wait_connected(page)
    page.wait_for_selector("article.msg-assistant >> nth=2")
    assert page.locator("#session-name").inner_text() == "Browser chat"
    users = page.locator(".msg-user").all_inner_texts()
    assert users[0] == "/stream 30" and users[2] == "/stream 400", users
    answers = page.locator("article.msg-assistant .md").all_inner_texts()
    assert answers[0].strip().endswith("t29"), answers
    assert answers[2].split()[: len(kept)] == kept, "the stopped answer's partial text is kept"

    # rename and delete (both ask in a dialog)
    page.once("dialog", lambda dialog: dialog.accept("Renamed chat"))
    page.click("#rename-session")
    page.wait_for_function(
        "() => document.getElementById('session-name').textContent === 'Renamed chat'"
    )
    page.wait_for_selector("#session-list li .s-name >> text=Renamed chat")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-session")
    page.wait_for_selector("#messages-empty >> text=Session deleted.")
    assert "session=" not in page.url
    assert page.locator(f'#session-list li[data-session-key="{key}"]').count() == 0
    page.reload()
    ui.wait_connected(page)
    assert page.locator("#session-list li .s-name >> text=Renamed chat").count() == 0


def test_tool_steps_markdown_safety_errors_and_folder(
    browser: ui.Browser, base: str, ui_gateway: GatewayProcess
) -> None:
    page = browser.page()
    ui.login_with_token(page, base)
    ui.wait_connected(page)
    ui.create_session(page, "Tools", agent="tools")

    # a folder being typed survives the head's re-render (here: a rename) until it is saved
    folder = ui_gateway.state_dir / "work" / "project"
    page.fill("#folder-input", str(folder))
    page.once("dialog", lambda dialog: dialog.accept("Tool steps"))
    page.click("#rename-session")
    page.wait_for_function(
        "() => document.getElementById('session-name').textContent === 'Tool steps'"
    )
    assert page.input_value("#folder-input") == str(folder)

    # a tool call is a collapsed step that opens to show input and output
    page.click("#folder-form button[type=submit]")
    page.wait_for_function(
        "v => document.getElementById('folder-input').value === v", arg=str(folder.resolve())
    )
    step = ui.ask(page, "/tool list_files {}").locator("details.tool")
    assert step.count() == 1
    assert step.get_attribute("open") is None, "tool steps start collapsed"
    assert not step.locator(".tool-output").is_visible()
    step.locator("summary").click()
    assert step.locator(".tool-output").inner_text().strip() == "notes.txt"
    assert step.locator("summary").inner_text() == "Tool list_files"
    assert "notes.txt" in ui.last_answer(page).locator(".md").inner_text()

    # a folder outside gateway.fsRoots: the gateway's reason is shown, nothing changes
    page.fill("#folder-input", "/etc")
    page.click("#folder-form button[type=submit]")
    error = page.locator("#folder-error")
    error.wait_for(state="visible")
    assert "outside the allowed folders" in error.inner_text()

    # user text never runs: markup in an answer is sanitized
    # (the image cannot load, so an onerror that survived would run)
    answer = ui.ask(
        page, 'Hi <img src="data:,x" onerror="window.__pwned=1"> <script>window.__pwned=2</script>'
    )
    assert answer.locator("img").count() == 1
    assert answer.locator("img").get_attribute("onerror") is None
    assert answer.locator("script").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    # DOMPurify parses the hostile markup in an inert document, where Chromium still checks
    # the inline handler against the page's CSP and logs the block: expected, and only that
    csp = [e for e in browser.errors if "Executing inline event handler violates" in e]
    assert len(browser.errors) == len(csp), browser.errors
    browser.errors.clear()
    # ... and the user's own message is plain text
    assert "<script>" in page.locator(".msg-user").last.inner_text()

    # an agent failure is shown as such
    failure = ui.ask(page, "/fail the model is on fire").locator(".run-error")
    assert failure.inner_text().startswith("Agent error: ")
    assert "the model is on fire" in failure.inner_text()


def test_a_field_typed_in_while_the_history_loads_keeps_the_focus(
    browser: ui.Browser, base: str, ui_gateway: GatewayProcess
) -> None:
    """Creating a session focuses the composer once its history is in, unless the user went
    to another field meanwhile (Playwright's fill focuses, then types: with a slow history
    the folder field was found empty, its text in the composer)."""
    page = browser.page()
    ui.delay_requests(page, "chat.history", 1500)
    ui.login_with_token(page, base)
    ui.wait_connected(page)
    ui.create_session(page, "Slow history")
    folder = str(ui_gateway.state_dir / "work" / "project")
    assert not page.evaluate("window.delayedSent"), "the history came before the fill"
    page.fill("#folder-input", folder)
    page.wait_for_function("() => window.delayedSent === true")
    page.wait_for_timeout(300)  # the history's reply, then the submit handler's end
    assert page.input_value("#folder-input") == folder
    assert page.input_value("#message-input") == ""
    assert page.evaluate("document.activeElement.id") == "folder-input"


def test_phone_viewport(browser: ui.Browser, base: str) -> None:
    page = browser.page(phone=True)
    ui.login_with_token(page, base)
    ui.wait_connected(page)
    sidebar = page.locator("#sidebar")
    assert not _in_viewport(page, "#sidebar"), "the sessions drawer starts closed on a phone"
    page.click("#sidebar-toggle")
    page.wait_for_function(
        "() => document.getElementById('sidebar').getBoundingClientRect().left >= 0"
    )
    assert sidebar.is_visible()
    ui.create_session(page, "Phone chat")
    page.wait_for_function("() => !document.getElementById('sidebar').classList.contains('open')")
    answer = ui.ask(page, "hello from the phone")
    assert answer.inner_text().strip() == "You said: hello from the phone"
    for selector in ("#message-input", "#send-button", "#session-name"):
        assert _in_viewport(page, selector), f"{selector} is off screen on a phone"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= ui.PHONE["width"], f"page scrolls sideways on a phone ({width}px)"
    ui.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ui.ARTIFACTS / "control-ui-phone.png"))


def _in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return bool(
        box
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 1
        and box["y"] + box["height"] <= size["height"] + 1
    )


def test_django_user_on_the_control_ui_port(
    browser: ui.Browser, ui_gateway: GatewayProcess
) -> None:
    assert ui_gateway.ui_port and ui_gateway.ui_port != ui_gateway.port
    base = f"http://127.0.0.1:{ui_gateway.ui_port}"
    page = browser.page()
    ui.login_as_user(page, base)
    ui.wait_connected(page)
    admin = page.locator("nav .admin-link")
    assert admin.get_attribute("href") == "/admin/", "staff users get the admin link"
    ui.create_session(page, "Second listener")
    answer = ui.ask(page, "over the UI port")
    assert answer.inner_text().strip() == "You said: over the UI port"
    page.click("nav .logout button")
    page.wait_for_url(f"{base}/login/")
    page.goto(f"{base}/")
    assert "/login/" in page.url, "logged out: the chat asks for a login again"

    # a wrong password is refused with Django's message, next to the form
    page.fill("#id_user-username", ui.USER)
    page.fill("#id_user-password", "wrong")
    page.click("#user-login button[type=submit]")
    assert "correct username and password" in page.locator("#user-login .errorlist").inner_text()


def test_agents_page_create_and_edit(browser: ui.Browser, base: str) -> None:
    page = browser.page()
    ui.login_with_token(page, base, next_path="/agents/")
    assert page.locator("nav .admin-link").count() == 0, "no admin link without a staff user"
    page.click("text=New agent")
    page.fill("#id_id", "writer")
    page.fill("#id_model", "no-colon")
    page.click("#agent-form button[type=submit]")
    error = page.locator('.field[data-field="model"] .field-error')
    assert "provider:model" in error.inner_text()
    page.fill("#id_model", "wingman:echo")
    page.fill("#id_name", "Writer")
    page.check('input[name="tools"][value="write_file"]')
    page.click("#agent-form button[type=submit]")
    page.wait_for_url(f"{base}/agents/writer/")
    assert "Agent 'writer' created." in page.locator(".flash").inner_text()

    page.fill("#id_system_prompt", "You write things down.")
    page.check("#id_is_default")
    page.click("#agent-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Agent 'writer' saved.")
    assert page.input_value("#id_system_prompt") == "You write things down."
    assert page.is_checked("#id_is_default")

    page.fill("#id_channel", "webui")
    page.select_option("#id_peer_kind", "dm")
    page.click("#binding-form button[type=submit]")
    assert "go together" in page.locator('.field[data-field="peer_id"] .field-error').inner_text()
    page.fill("#id_peer_id", "user-123")
    page.click("#binding-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Binding added.")
    row = page.locator("#bindings tbody tr[data-binding]")
    assert row.count() == 1 and "dm: user-123" in row.inner_text()
    row.locator("button").click()
    page.wait_for_selector(".flash >> text=Binding removed.")
    assert page.locator("#bindings tbody tr[data-binding]").count() == 0

    page.goto(f"{base}/agents/")
    writer = page.locator('tr[data-agent="writer"]')
    assert "default" in writer.inner_text() and "write_file" in writer.inner_text()
    assert "default" not in page.locator('tr[data-agent="main"]').inner_text()
    # the chat's agent picker offers it, preselected as the new default
    page.goto(f"{base}/")
    ui.wait_connected(page)
    assert page.input_value("#agent-picker") == "writer"
    # put the default back for the other tests
    page.goto(f"{base}/agents/main/")
    page.check("#id_is_default")
    page.click("#agent-form button[type=submit]")
    page.wait_for_selector(".flash >> text=Agent 'main' saved.")


def test_deleting_an_agent_with_sessions_asks_for_the_box_and_says_so(
    browser: ui.Browser, base: str
) -> None:
    auth = {"Authorization": f"Bearer {ui.TOKEN}"}
    with httpx.Client(base_url=base, headers=auth, timeout=15) as api:
        assert api.post("/api/agents", json={"id": "doomed"}).status_code == 201
        created = api.post("/api/sessions", json={"agentId": "doomed", "name": "history"})
        assert created.status_code == 201
    page = browser.page()
    ui.login_with_token(page, base, next_path="/agents/doomed/")
    asked: list[str] = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.click("#agent-delete button[type=submit]")  # box not ticked: refused, kept
    page.wait_for_selector(".flash >> text=Not deleted: agent 'doomed' has 1 session(s)")
    assert asked == ["Delete agent doomed with its bindings?"]
    page.check("#agent-delete-force")
    page.click("#agent-delete button[type=submit]")
    page.wait_for_url(f"{base}/agents/")
    assert "AND its 1 session with all their messages and runs?" in asked[1], asked
    assert "Agent 'doomed' deleted" in page.locator(".flash").inner_text()
    assert page.locator('tr[data-agent="doomed"]').count() == 0


def test_status_page_updates_live(browser: ui.Browser, base: str) -> None:
    page = browser.page()
    ui.login_with_token(page, base, next_path="/status/")
    page.wait_for_function("() => document.getElementById('st-health').textContent === 'healthy'")
    rows = page.locator("#presence-rows tr")
    assert "(this page)" in rows.first.inner_text()
    before = rows.count()
    uptime = page.locator("#st-uptime").inner_text()
    assert re.fullmatch(r"(\d+[dhm] )*\d+s", uptime), uptime

    other = browser.page()  # a second client: the chat page of another browser
    ui.login_with_token(other, base)
    ui.wait_connected(other)
    page.wait_for_function(
        f"() => document.querySelectorAll('#presence-rows tr').length > {before}"
    )
    assert int(page.locator("#st-presence-count").inner_text()) == before + 1
    page.wait_for_function(
        f"() => Number(document.getElementById('st-connections').textContent) >= {before + 1}"
    )
    page.wait_for_function(f"() => document.getElementById('st-uptime').textContent !== '{uptime}'")
    other.close()
    page.wait_for_function(
        f"() => document.querySelectorAll('#presence-rows tr').length === {before}"
    )


def test_reconnect_resubscribes_and_reloads_history(
    chromium: ui.Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    chromium.errors.clear()
    state = tmp_path / "gw"
    ui.write_config(state, fs_root=state / "work")
    port = ui.free_port()
    args = ("--port", str(port))
    first = GatewayProcess(state, name="before-restart", args=args).start()
    request.node.stash[_GATEWAYS] = [first]
    base = first.http_url
    try:
        page = chromium.page()
        ui.login_with_token(page, base)
        ui.wait_connected(page)
        key = ui.create_session(page, "Survives restarts")
        ui.ask(page, "before the restart")
        first.stop()
        banner = page.locator("#conn-banner")
        banner.wait_for(state="visible")
        assert "Connection to the gateway lost" in banner.inner_text()

        second = GatewayProcess(state, name="after-restart", args=args).start()
        request.node.stash[_GATEWAYS] = [first, second]
        try:
            # backoff is at most 15 s; the page comes back by itself, history reloaded
            banner.wait_for(state="hidden", timeout=25_000)
            page.wait_for_selector("article.msg-assistant >> text=You said: before the restart")
            # re-subscribed: a run started elsewhere in this session streams into this page
            other = chromium.page()
            ui.login_with_token(other, base, next_path=f"/?session={key}")
            ui.wait_connected(other)
            ui.send(other, "from another browser")
            page.wait_for_selector("article.msg-assistant >> text=You said: from another browser")
            page.wait_for_selector(".msg-user >> text=from another browser")
        finally:
            second.stop()
    finally:
        first.stop()
        chromium.close_contexts()
    # while the gateway was down the browser logged refused connections: expected
    assert not [e for e in chromium.errors if "ERR_CONNECTION_REFUSED" not in e], chromium.errors
