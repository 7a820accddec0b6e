"""``GET /api/runs/<id>/events`` in process, on the real ASGI application: a client that goes
away unsubscribes its hub listener; and the hub's listener API on its own."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

from agents.models import RunSource
from agents.services import runs
from agents.services.runs import RunRequest, session_topic
from gateway.delivery.hub import get_hub
from gateway.delivery.publish import publish_topic
from tests.agents.conftest import acreate_agent

TOKEN = "sse-token"


def _request(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {TOKEN}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _until(condition, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.django_db(transaction=True)
async def test_client_disconnect_unsubscribes_the_stream(hub_cleanup, wingman_auth):
    from wingman.asgi import application

    wingman_auth("token", token=TOKEN)
    await acreate_agent("main", model="wingman:slow", is_default=True)
    request = RunRequest(message="/stream 200", source=RunSource.API, agent_id="main")
    ticket = await runs.run_submit(request)
    await runs.run_launch(ticket, request)
    hub = await get_hub()
    topic = session_topic(ticket.session_key)

    comm = ApplicationCommunicator(application, _request(f"/api/runs/{ticket.run_id}/events"))
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(10)
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = {name.lower(): value for name, value in start["headers"]}
    assert headers[b"content-type"] == b"text/event-stream"
    first = await comm.receive_output(10)
    assert first["body"].startswith(b"event: agent-")
    assert len(hub.listeners[topic]) == 1

    await comm.send_input({"type": "http.disconnect"})
    await _until(lambda: topic not in hub.listeners)
    await comm.wait(5)

    assert await runs.run_cancel(ticket.run_id)
    assert (await runs.run_wait(ticket.run_id, 10)).status == "cancelled"


async def test_listeners_get_their_topics_events_in_order_and_leave_cleanly(hub_cleanup):
    hub = await get_hub()
    a = await hub.listen("t:a")
    a2 = await hub.listen("t:a")
    b = await hub.listen("t:b")
    for i in range(3):
        await publish_topic("t:a", "agent", {"i": i}, key="r1")
    await publish_topic("t:b", "agent", {"i": 9})

    for listener in (a, a2):
        got = [await asyncio.wait_for(anext(listener), 1) for _ in range(3)]
        assert [e.payload_json for e in got] == ['{"i":0}', '{"i":1}', '{"i":2}']
        assert {e.key for e in got} == {"r1"}
    assert (await asyncio.wait_for(anext(b), 1)).payload_json == '{"i":9}'
    assert a.queue.empty() and b.queue.empty()

    await hub.unlisten(a)
    assert hub.listeners["t:a"] == {a2}
    await hub.unlisten(a)  # twice is harmless
    await hub.unlisten(a2)
    await hub.unlisten(b)
    assert hub.listeners == {}
    await publish_topic("t:a", "agent", {"i": 10})
    assert a2.queue.empty()
