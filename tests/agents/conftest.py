"""Fixtures for the agents tests: agents in the database, a hub that is stopped afterwards,
and connected test clients on the real ASGI app (embedded and Redis backends)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from agents.models import Agent
from gateway.delivery.hub import reset_hub
from tests.gateway.communicator import Client

# The end-to-end fixtures (real gateway subprocesses, logs attached to failures).
from tests.gateway.conftest import (  # noqa: F401
    each_server,
    gateway,
    gateway_factory,
    pytest_runtest_makereport,
    worker_factory,
)


def create_agent(agent_id: str, **fields) -> Agent:
    fields.setdefault("model", "wingman:echo")
    return Agent.objects.create(id=agent_id, **fields)


acreate_agent = database_sync_to_async(create_agent)


@pytest.fixture
async def hub_cleanup():
    """Stop the hub a test started (through the run service) when it ends."""
    yield
    await reset_hub()


async def quiet(client: Client, seconds: float, unwanted) -> list[dict]:
    """Read what arrives for ``seconds``; fail on a frame ``unwanted(frame)`` is true for
    (other frames, e.g. presence, are fine). Returns the frames read."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    seen: list[dict] = []
    while (remaining := deadline - loop.time()) > 0:
        if await client.comm.receive_nothing(remaining):
            break
        frame = await client.recv(1)
        assert not unwanted(frame), f"unexpected frame: {frame}"
        seen.append(frame)
    return seen


async def agent_call(client: Client, params: dict, *, rid: str | None = None, timeout: float = 5):
    """Send ``agent``; return (ack, agent event payloads of that run, final res, all frames).

    Reads until the second ``res`` of the request (bounded by ``timeout`` per frame).
    """
    import uuid

    rid = rid or f"a-{uuid.uuid4().hex[:8]}"
    await client.send({"type": "req", "id": rid, "method": "agent", "params": params})
    ack, _ = await client.recv_until(lambda f: f.get("type") == "res" and f["id"] == rid, timeout)
    if not ack["ok"]:
        return ack, [], None, []
    final, frames = await client.recv_until(
        lambda f: f.get("type") == "res" and f["id"] == rid, timeout, limit=2000
    )
    run_id = ack["payload"]["runId"]
    events = [
        f["payload"]
        for f in frames
        if f.get("event") == "agent" and f["payload"].get("runId") == run_id
    ]
    return ack, events, final, frames


def check_run_events(
    events: list[dict], *, run_id: str, session_key: str, agent_id: str, started: bool = True
) -> None:
    """Every agent event of a run: envelope fields, seq 1..n, agent-start first (when the run
    started), exactly one terminal event and it is the last."""
    assert events, "no agent events"
    if started:
        assert events[0]["type"] == "agent-start", events[0]
        assert sum(e["type"] == "agent-start" for e in events) == 1
    for e in events:
        assert e["runId"] == run_id, e
        assert e["sessionKey"] == session_key, e
        assert e["agentId"] == agent_id, e
        assert isinstance(e["timestamp"], int) and e["timestamp"] > 1_600_000_000_000, e
        assert isinstance(e["type"], str), e
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps), stamps
    terminal = [e for e in events if e["type"] in TERMINAL_TYPES]
    assert len(terminal) == 1, [e["type"] for e in events]
    assert events[-1] is terminal[0], [e["type"] for e in events]


TERMINAL_TYPES = ("agent-complete", "agent-error", "agent-cancelled")
