"""The Control UI's rooms page in real headless Chromium against the real gateway
(tests/gateway/browser.py): create a room of three agents, broadcast, watch the three
answers stream side by side at the same time, see the live members, continue an agent's
room session in the chat, and the columns stacked on a phone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gateway import browser as ui
from tests.gateway.gateway_process import TOKEN, GatewayProcess
from tests.rooms.e2e import AGENTS, trio_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> Iterator[ui.Browser]:
    yield from ui.browser_fixture()


@pytest.fixture(scope="module")
def rooms_gateway(tmp_path_factory: pytest.TempPathFactory, chromium) -> Iterator[GatewayProcess]:
    """A gateway whose three agents stream slowly (50 ms a token) so streams can be watched."""
    yield from trio_gateway(tmp_path_factory, "rooms-ui", model="wingman:slow", titled=True)


@pytest.fixture
def browser(
    chromium: ui.Browser, rooms_gateway: GatewayProcess, request: pytest.FixtureRequest
) -> Iterator[ui.Browser]:
    yield from ui.checked_browser(chromium, rooms_gateway, request)


def open_rooms(browser: ui.Browser, base: str, *, phone: bool = False, query: str = ""):
    page = browser.page(phone=phone)
    ui.login_with_token(page, base, next_path="/rooms/")
    if query:
        page.goto(f"{base}/rooms/{query}")
    page.wait_for_selector("#new-room-agents input", state="attached")
    page.wait_for_selector("#conn-banner", state="hidden")
    return page


def create_room(page, name: str, agents=AGENTS, strategy: str = "parallel") -> str:
    if page.locator("#sidebar-toggle").is_visible():
        page.click("#sidebar-toggle")
    page.fill("#new-room-name", name)
    page.select_option("#new-room-strategy", strategy)
    for agent in agents:
        page.check(f"#new-room-agents input[value={agent}]")
    page.click("#new-room button[type=submit]")
    page.wait_for_function(
        "name => document.getElementById('room-name').textContent === name", arg=name
    )
    return parse_qs(urlsplit(page.url).query)["room"][0]


def column_texts(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.room-column')].map(
             c => [c.dataset.agentId,
                   (c.querySelector('article.msg-assistant:last-of-type .md') || {}).innerText || '']))"""
    )


def test_three_agents_stream_side_by_side(browser: ui.Browser, rooms_gateway) -> None:
    base = rooms_gateway.http_url
    page = open_rooms(browser, base)
    room_id = create_room(page, "PR review")
    assert [
        c for c in page.locator(".room-column").evaluate_all("cs => cs.map(c => c.dataset.agentId)")
    ] == list(AGENTS)

    # a second member (another browser) is listed live, and hears the message
    other = open_rooms(browser, base, query=f"?room={room_id}")
    page.wait_for_function(
        "() => document.querySelectorAll('#live-member-list .live-member').length === 2"
    )

    ui.send(page, "/stream 30")
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        texts = column_texts(page)
        if not seen or texts != seen[-1]:
            seen.append(texts)
        if all(texts.get(a, "").strip().endswith("t29") for a in AGENTS):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"not every column finished: {seen[-1:]}")
    # each column streamed (several growing states) ...
    for agent in AGENTS:
        states = [s[agent] for s in seen]
        partial = {s for s in states if s.strip() and not s.strip().endswith("t29")}
        assert len(partial) >= 3, f"{agent} did not stream: {states}"
    # ... and at the same time: a moment when all three were part-way
    both = [
        s for s in seen if all(s[a].strip() and not s[a].strip().endswith("t29") for a in AGENTS)
    ]
    assert both, "the three answers did not stream concurrently"
    page.wait_for_function("() => !document.querySelector('article.msg-assistant.streaming')")
    ui.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ui.ARTIFACTS / "control-ui-rooms.png"))

    # the other member saw the prompt and the three answers too
    other.wait_for_function(
        """() => [...document.querySelectorAll('.room-column')].every(
             c => (c.querySelector('article.msg-assistant .md') || {}).innerText?.trim().endsWith('t29'))"""
    )
    assert other.locator(".room-column .msg-user").first.inner_text() == "/stream 30"

    # continue an agent's room session in the chat
    link = page.locator(".room-column[data-agent-id=beta] a.continue-link")
    assert parse_qs(urlsplit(link.get_attribute("href")).query)["session"] == [
        f"agent:beta:room:{room_id}"
    ]
    link.click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('article.msg-assistant .md')].some("
        "m => m.innerText.trim().endsWith('t29'))"
    )

    # the history comes back on a reload, in every column
    fresh = open_rooms(browser, base, query=f"?room={room_id}")
    fresh.wait_for_function(
        """() => document.querySelectorAll('.room-column article.msg-assistant[data-state=done]').length === 3"""
    )


def test_a_sequential_room_answers_in_turn(browser: ui.Browser, rooms_gateway) -> None:
    """Beta starts only after alpha's answer, and its answer shows it saw alpha's."""
    page = open_rooms(browser, rooms_gateway.http_url)
    create_room(page, "planner then reviewer", agents=("alpha", "beta"), strategy="sequential")
    assert page.locator("#room-strategy").inner_text().startswith("sequential")
    ui.send(page, "/stream 10")
    states = ui.sample_growth(
        lambda: json.dumps(column_texts(page), sort_keys=True),
        until=lambda v: "[alpha]" in json.loads(v).get("beta", ""),
        seconds=20,
    )
    for value in map(json.loads, states):
        if value.get("beta", "").strip():  # beta began: alpha had finished by then
            assert value["alpha"].strip().endswith("t9"), value
    page.wait_for_function("() => !document.querySelector('article.msg-assistant.streaming')")

    # delete it (after the confirmation): gone from the list, the page says so
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-room")
    page.wait_for_function("() => document.getElementById('room-name').textContent === 'Rooms'")
    assert page.locator("#columns-empty").inner_text() == "Room deleted."
    page.wait_for_function(
        "() => !document.getElementById('room-list').innerText.includes('planner then')"
    )
    assert "room=" not in page.url


def node_frame(ws, frame: dict) -> dict:
    """Send one wingman-node frame; the next frame that is not a ping or broadcast."""
    ws.send(json.dumps(frame))
    for _ in range(50):
        reply = json.loads(ws.recv(timeout=10))
        if reply.get("type") not in ("ping", "broadcast", "event"):  # event: the challenge
            return reply
    raise AssertionError("no reply")


def test_a_node_is_a_live_member_and_its_broadcast_reaches_the_agents(
    browser: ui.Browser, rooms_gateway
) -> None:
    """A wingman-node joins the open room: listed as a node; its broadcast shows in every
    column and the agents answer it there."""
    from websockets.sync.client import connect

    page = open_rooms(browser, rooms_gateway.http_url)
    room_id = create_room(page, "node room", agents=("alpha", "gamma"))
    with connect(f"{rooms_gateway.url}ws", open_timeout=10) as ws:
        ack = node_frame(ws, {"type": "register", "payload": {"name": "node-a", "token": TOKEN}})
        assert ack["type"] == "ack", ack
        node_id = ack["nodeId"]
        joined = node_frame(
            ws, {"type": "join_group", "nodeId": node_id, "payload": {"groupId": room_id}}
        )
        assert joined["type"] == "ack" and joined["groupId"] == room_id, joined
        page.wait_for_selector("#live-member-list .live-member[data-kind=node]")
        assert (
            "node-a" in page.locator("#live-member-list .live-member[data-kind=node]").inner_text()
        )
        message = {"groupId": room_id, "message": {"content": "/stream 5"}}
        ws.send(json.dumps({"type": "broadcast", "nodeId": node_id, "payload": message}))
        page.wait_for_function(
            """() => [...document.querySelectorAll('.room-column')].every(c =>
                 c.querySelector('.msg-user')?.textContent === '/stream 5' &&
                 (c.querySelector('article.msg-assistant .md') || {}).innerText?.trim().endsWith('t4'))"""
        )
        assert page.locator(".room-column .msg-user").first.get_attribute("title") == (
            "from node node-a"
        )
    page.wait_for_function(  # the node left when it disconnected
        "() => !document.querySelector('#live-member-list .live-member[data-kind=node]')"
    )


def test_columns_stack_on_a_phone(browser: ui.Browser, rooms_gateway) -> None:
    page = open_rooms(browser, rooms_gateway.http_url, phone=True)
    create_room(page, "phone room")
    boxes = [c.bounding_box() for c in page.locator(".room-column").all()]
    assert len(boxes) == 3
    assert len({round(b["x"]) for b in boxes}) == 1, boxes  # one above the other
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"], boxes
    assert all(b["width"] <= ui.PHONE["width"] for b in boxes), boxes
    page.wait_for_timeout(300)  # the rooms drawer finishes sliding away
    ui.ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ui.ARTIFACTS / "control-ui-rooms-phone.png"))
