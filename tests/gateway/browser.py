"""Browser tests' helpers: Debian's Chromium driven by Playwright, against a real gateway.

Never downloads a browser: Playwright's bundled driver launches ``/usr/bin/chromium`` (or
``CHROMIUM_BIN``). Without it the tests skip with a reason, except under ``CI=true``
where they fail (tests/run.sh installs it). Every wait has a timeout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.gateway.conftest import _GATEWAYS
from tests.gateway.gateway_process import HOST, REPO, TOKEN, GatewayProcess

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: Default for every Playwright wait (ms); single steps override it where they need more.
WAIT_MS = 10_000
ARTIFACTS = REPO / "artifacts"
PHONE = {"width": 390, "height": 844}

USER = "ui-admin"
USER_PASSWORD = "correct horse battery staple"


def require_chromium() -> None:
    """Skip (or fail under CI) when there is no Chromium or Playwright."""
    problem = None
    if not Path(CHROMIUM).is_file():
        problem = f"Chromium not found at {CHROMIUM} (apt-get install chromium; tests/run.sh does)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (requirements/test.txt)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_config(state_dir: Path, *, fs_root: Path) -> None:
    """Agents for the UI tests: ``main`` streams slowly (50 ms a token, so a run can be
    watched and stopped), ``tools`` answers at once and may list files."""
    config = {
        "gateway": {"fsRoots": [str(fs_root)]},
        "agents": {
            "list": [
                {"id": "main", "name": "Main", "default": True, "model": "wingman:slow"},
                {"id": "tools", "name": "Tools", "model": "wingman:echo", "tools": ["list_files"]},
            ]
        },
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "wingman.config.json").write_text(json.dumps(config), encoding="utf-8")


def create_superuser(gw: GatewayProcess) -> None:
    """A Django superuser in this gateway's own database (same env as the process)."""
    env = dict(gw.env, DJANGO_SUPERUSER_PASSWORD=USER_PASSWORD)
    cmd = [sys.executable, "manage.py", "createsuperuser", "--noinput"]
    cmd += ["--username", USER, "--email", "ui-admin@example.invalid"]
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"createsuperuser failed:\n{done.stdout}\n{done.stderr}"


class Browser:
    """One Chromium for a test module; a fresh context (cookies) per :meth:`page`."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        self.contexts: list[Any] = []
        #: JavaScript errors and console errors seen on any page (asserted empty by tests).
        self.errors: list[str] = []

    def page(self, *, phone: bool = False):
        options: dict[str, Any] = {}
        if phone:
            options = {"viewport": PHONE, "is_mobile": True, "has_touch": True}
        context = self.browser.new_context(**options)
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        return page

    def _console(self, message) -> None:
        # a form re-shown with its errors is a 400 page: Chromium logs that as an error
        if message.type == "error" and not message.text.endswith("status of 400 (Bad Request)"):
            self.errors.append(f"console: {message.text}")

    def close_contexts(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()

    def close(self) -> None:
        self.close_contexts()
        self.browser.close()
        self._pw.stop()


def login_with_token(page, base: str, *, token: str = TOKEN, next_path: str = "/") -> None:
    """Log in with the gateway token and land on ``next_path``."""
    page.goto(f"{base}/login/?{urlencode({'next': next_path})}")
    page.fill("#id_gw-secret", token)
    page.click("#secret-login button[type=submit]")
    path = urlsplit(next_path).path
    page.wait_for_url(lambda url: urlsplit(url).path == path)


def login_as_user(page, base: str, *, username: str = USER, password: str = USER_PASSWORD):
    page.goto(f"{base}/login/")
    page.fill("#id_user-username", username)
    page.fill("#id_user-password", password)
    page.click("#user-login button[type=submit]")
    page.wait_for_url(lambda url: urlsplit(url).path == "/")


def wait_connected(page) -> None:
    """The chat page finished its handshake and loaded agents and sessions."""
    page.wait_for_selector("#agent-picker option", state="attached")
    page.wait_for_selector("#conn-banner", state="hidden")


#: Wraps the WebSocket's send: requests for ``method`` leave ``ms`` late.
_DELAY_REQUESTS = """
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data !== "string" || !data.includes(`"${method}"`)) return send.call(this, data);
  setTimeout(() => { send.call(this, data); window.delayedSent = true; }, ms);
};
"""


def delay_requests(page, method: str, ms: int) -> None:
    """The page sends its ``method`` requests ``ms`` late (``window.delayedSent`` once one
    has left), from before the page's own scripts run."""
    values = f"const [method, ms] = {json.dumps([method, ms])};"
    page.add_init_script("{" + values + _DELAY_REQUESTS + "}")


def create_session(page, name: str, agent: str | None = None) -> str:
    """Create a named session from the sidebar; returns its key (from the URL)."""
    if agent:
        page.select_option("#agent-picker", agent)
    page.fill("#new-session-name", name)
    page.click("#new-session button[type=submit]")
    page.wait_for_function(
        "name => document.getElementById('session-name').textContent === name", arg=name
    )
    page.wait_for_url(lambda url: "session" in parse_qs(urlsplit(url).query))
    return parse_qs(urlsplit(page.url).query)["session"][0]


def send(page, text: str) -> None:
    page.fill("#message-input", text)
    page.click("#send-button")


def ask(page, text: str, *, timeout: float = 15_000):
    """Send ``text`` and wait until its answer has ended; returns the answer's locator."""
    before = page.locator("article.msg-assistant").count()
    send(page, text)
    page.wait_for_function(
        """n => {
          const all = document.querySelectorAll('article.msg-assistant');
          return all.length > n && !['running', undefined].includes(all[all.length - 1].dataset.state);
        }""",
        arg=before,
        timeout=timeout,
    )
    wait_idle(page, timeout=timeout)
    return last_answer(page)


def last_answer(page):
    return page.locator("article.msg-assistant").last


def wait_idle(page, timeout: float = WAIT_MS) -> None:
    """No run of the open session is still going (the Stop button is gone)."""
    page.wait_for_selector("#stop-button", state="hidden", timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('article.msg-assistant.streaming')", timeout=timeout
    )


def sample_growth(read: Callable[[], str], *, until: Callable[[str], bool], seconds: float):
    """Distinct values of ``read()`` polled every 50 ms until ``until(value)`` (bounded)."""
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = read()
        if not seen or value != seen[-1]:
            seen.append(value)
        if until(value):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not reached within {seconds}s; values seen: {seen[-5:]}")


def browser_fixture() -> Iterator[Browser]:
    require_chromium()
    browser = Browser()
    try:
        yield browser
    finally:
        browser.close()


def page_gateway(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[GatewayProcess]:
    """A module's gateway for page tests: the UI test agents (:func:`write_config`)."""
    state = tmp_path_factory.mktemp(name)
    write_config(state, fs_root=state / "work")
    (state / "work").mkdir(parents=True, exist_ok=True)
    gw = GatewayProcess(state, name=name).start()
    try:
        yield gw
    finally:
        gw.stop()


def checked_browser(chromium: Browser, gateway: GatewayProcess, request) -> Iterator[Browser]:
    """The module's browser for one test: the gateway's log goes with a failure, its pages
    are closed after, and no JavaScript or console error may have happened."""
    request.node.stash[_GATEWAYS] = [gateway]
    chromium.errors.clear()
    yield chromium
    chromium.close_contexts()
    assert not chromium.errors, f"errors in the browser: {chromium.errors}"
