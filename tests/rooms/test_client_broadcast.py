"""The wingman-client ``broadcast`` frame (seed 001): ack with the run ids, then every member
agent's ``event:agent`` frames with the broadcast's id, each naming its agent and room."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from rooms.services import room_create
from tests.agents.conftest import acreate_agent
from tests.agents.test_wingman_client import wingman  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")


async def test_broadcast_frame_streams_every_agent(wingman):  # noqa: F811
    for agent_id in ("planner", "coder", "critic"):
        await acreate_agent(agent_id)
    room = await database_sync_to_async(room_create)(
        name="swarm-1", agent_ids=["planner", "coder", "critic"]
    )
    ws, other = wingman(), wingman()
    assert (await ws.connect())["payload"] == "gateway-ready"
    assert (await other.connect())["payload"] == "gateway-ready"
    frame = {"type": "broadcast", "id": "b-1", "roomId": "swarm-1", "payload": {"content": "hi"}}
    await ws.send(frame)
    ack = await ws.recv()
    assert ack["type"] == "ack" and ack["id"] == "b-1", ack
    assert ack["payload"]["action"] == "broadcast" and ack["payload"]["roomId"] == room.id
    run_ids = ack["payload"]["runIds"]
    assert len(run_ids) == 3
    ended: dict[str, dict] = {}
    for _ in range(500):
        f = await ws.recv(10)
        if f["type"] != "event:agent":
            continue
        assert f["id"] == "b-1", f
        p = f["payload"]
        assert p["roomId"] == room.id and p["runId"] in run_ids
        if p["type"] in TERMINAL:
            ended[p["agentId"]] = p
        if len(ended) == 3:
            break
    assert set(ended) == {"planner", "coder", "critic"}
    assert all(p["type"] == "agent-complete" for p in ended.values())
    # a connection not in the room got nothing of it
    assert await other.comm.receive_nothing(0.3)


async def test_broadcast_frame_errors(wingman):  # noqa: F811
    ws = wingman()
    await ws.connect()
    await ws.send(
        {"type": "broadcast", "id": "b-2", "roomId": "ghost", "payload": {"content": "x"}}
    )
    err = await ws.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "NOT_FOUND", err
    await ws.send({"type": "broadcast", "id": "b-3", "payload": {"content": "x"}})
    err = await ws.recv()
    assert err["type"] == "error" and err["payload"]["code"] == "INVALID_MESSAGE", err
