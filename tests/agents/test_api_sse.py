"""``GET /api/runs/<id>/events`` in process, on the real ASGI application: a client that goes
away unsubscribes its hub listener, a client that joins a live run gets it from its start;
and the hub's listener API on its own (its key filter and byte bound)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.utils import timezone

from agents.models import Run, RunSource, RunStatus
from agents.services import runs
from agents.services.runs import RunRequest, session_topic
from agents.services.runs.accept import accept
from gateway.delivery.hub import get_hub
from gateway.delivery.publish import publish_topic
from gateway.protocol.events import AGENT_TERMINAL
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
    ticket = await runs.run_start(request=request)
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


async def test_a_listener_takes_only_its_key_and_is_cut_off_past_max_bytes(hub_cleanup):
    hub = await get_hub()
    cut = []
    listener = await hub.listen("t:s", key="run-1", max_bytes=100)
    listener.on_overflow = lambda: cut.append(True)
    await publish_topic("t:s", "session.message", {"other": "x" * 200})  # no key: not ours
    await publish_topic("t:s", "agent", {"run": 2, "pad": "x" * 200}, key="run-2")
    await publish_topic("t:s", "agent", {"i": 0, "pad": "x" * 150}, key="run-1")  # one alone: ok
    assert listener.queue.qsize() == 1 and not listener.overflowed
    assert (await anext(listener)).payload_json.startswith('{"i":0')
    assert listener.queued_bytes == 0

    for i in range(1, 3):
        await publish_topic("t:s", "agent", {"i": i, "pad": "x" * 30}, key="run-1")
    assert listener.queue.qsize() == 2 and not listener.overflowed  # 2 x 46 bytes queued
    await publish_topic("t:s", "agent", {"i": 9, "pad": "x" * 10}, key="run-1")
    assert listener.overflowed and cut == [True]
    assert listener.queue.empty() and listener.queued_bytes == 0  # the backlog is freed
    await publish_topic("t:s", "agent", {"i": 10}, key="run-1")
    assert listener.queue.empty() and cut == [True]
    with pytest.raises(StopAsyncIteration):
        await anext(listener)
    await hub.unlisten(listener)
    assert hub.listeners == {}


async def _sse_events(comm: ApplicationCommunicator, seconds: float = 15.0) -> list[dict]:
    """Every event of an SSE response until its body ends."""
    start = await comm.receive_output(10)
    assert start["type"] == "http.response.start" and start["status"] == 200, start
    return await _sse_events_after_start(comm, seconds)


async def _sse_events_after_start(comm: ApplicationCommunicator, seconds: float = 15.0):
    body = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        message = await comm.receive_output(max(0.1, deadline - loop.time()))
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    events = []
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            data = json.loads(lines["data"])
            assert lines["event"] == data.get("type", "error"), block
            events.append(data)
    return events


@pytest.mark.django_db(transaction=True)
async def test_a_follower_joining_a_live_run_gets_it_from_its_start(hub_cleanup, wingman_auth):
    """Connected halfway through: agent-start, one agent-stream with the text so far, then
    the live events after it: no gap, no duplicate, the whole text, one terminal event."""
    from wingman.asgi import application

    wingman_auth("token", token=TOKEN)
    await acreate_agent("main", model="wingman:slow", is_default=True)
    hub = await get_hub()
    watching = []

    async def watch_it(ticket):  # subscribed before the run can start
        watching.append(await hub.listen(session_topic(ticket.session_key)))

    request = RunRequest(
        message="/stream 30", source=RunSource.API, agent_id="main", before_start=watch_it
    )
    ticket = await runs.run_start(request=request)
    [watch] = watching
    texts = 0
    while texts < 5:  # the run is well under way
        event = await asyncio.wait_for(anext(watch), 10)
        texts += event.key == ticket.run_id and "text" in json.loads(event.payload_json)
    await hub.unlisten(watch)

    comm = ApplicationCommunicator(application, _request(f"/api/runs/{ticket.run_id}/events"))
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    events = await _sse_events(comm)
    await comm.wait(5)

    assert events[0]["type"] == "agent-start" and events[0]["seq"] == 1
    assert events[0]["prompt"] == "/stream 30"
    replayed = events[1]
    assert replayed["type"] == "agent-stream" and replayed["replay"] is True
    assert replayed["text"].startswith("t0 t1 t2 t3 t4 ")
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), seqs  # increasing: no duplicate
    assert not any(e.get("replay") for e in events[2:])
    assert [e["seq"] for e in events[2:]] == list(range(replayed["seq"] + 1, seqs[-1] + 1))
    text = "".join(e.get("text", "") for e in events if e["type"] == "agent-stream")
    assert text == "".join(f"t{i} " for i in range(30))
    assert events[-1]["type"] == "agent-complete" and events[-1]["result"]["text"] == text
    assert sum(e["type"] in AGENT_TERMINAL for e in events) == 1
    assert session_topic(ticket.session_key) not in hub.listeners


@pytest.mark.django_db(transaction=True)
async def test_a_run_whose_process_cannot_replay_it_falls_back_to_the_database(
    hub_cleanup, wingman_auth, monkeypatch
):
    """Running in a process that is gone: agent-start from the database, and the end the
    database records once it is there (here: the cancel finds the run lost)."""
    from agents.api import streams
    from wingman.asgi import application

    monkeypatch.setattr(streams, "KEEPALIVE_SECONDS", 0.2)
    wingman_auth("token", token=TOKEN)
    await acreate_agent("main", is_default=True)
    request = RunRequest(message="/stream 5", source=RunSource.API, agent_id="main")
    ticket, _ = await database_sync_to_async(accept)(request, executor="local", owner=None)
    long_ago = timezone.now() - timedelta(hours=1)  # accepted, never launched here
    await database_sync_to_async(Run.objects.filter(pk=ticket.run_id).update)(
        status=RunStatus.RUNNING, owner="gone", started_at=long_ago, heartbeat_at=long_ago
    )

    comm = ApplicationCommunicator(application, _request(f"/api/runs/{ticket.run_id}/events"))
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert (await comm.receive_output(10))["status"] == 200
    first = (await comm.receive_output(10))["body"].decode()
    start = json.loads(first.split("data: ", 1)[1])
    assert start["type"] == "agent-start" and start["seq"] == 1 and start["replay"] is True
    assert start["prompt"] == "/stream 5" and start["runId"] == ticket.run_id

    assert await runs.run_cancel(ticket.run_id) is False  # its process is gone: lost
    events = await _sse_events_after_start(comm)
    assert [(e["type"], e.get("code")) for e in events] == [("agent-error", "EXECUTOR_LOST")]
    await comm.wait(5)


async def test_a_follower_waiting_elsewhere_is_offered_only_the_terminal_event(hub_cleanup):
    """``run_wait`` on a gateway for a run executing elsewhere listens with ``want``: the
    run's streamed chunks (thousands a second) are not queued, not parsed, and do not wake
    it; a chunk that merely mentions a terminal type is not taken for one."""
    from agents.services.runs.control import _terminal

    hub = await get_hub()
    listener = await hub.listen("t:r", key="run-1", want=_terminal)
    for text in ("agent-complete", "hello"):
        await publish_topic("t:r", "agent", {"type": "agent-stream", "text": text}, key="run-1")
    await publish_topic("t:r", "agent", {"type": "agent-error", "error": "x"}, key="run-2")
    for kind in AGENT_TERMINAL:
        await publish_topic("t:r", "agent", {"type": kind}, key="run-1")
    got = [json.loads((await anext(listener)).payload_json)["type"] for _ in AGENT_TERMINAL]
    assert got == list(AGENT_TERMINAL) and listener.queue.empty()
    await hub.unlisten(listener)
