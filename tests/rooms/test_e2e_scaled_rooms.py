"""Rooms across gateway processes: two gateways and a Celery worker on Redis and one
PostgreSQL database. Members split between the gateways get every broadcast once and in
order; a direct message crosses processes; a room's agent runs (executed in the worker)
stream to a member on the other gateway; live members and nodes are seen from both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents import test_e2e_agents
from tests.agents.test_e2e_scaled import Scaled, scaled_cluster
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    WorkerFactory,
    ahttp_get,
    wait_until,
)
from tests.rooms.e2e import create_room, node_join, node_register, raw, wingman_client

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

shared_database = test_e2e_agents.shared_database  # a fixture: a fresh PostgreSQL database
AGENTS = [{"id": a, "model": "wingman:slow"} for a in ("planner", "coder", "critic")]
TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")
N = 30
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def rooms_cluster(
    gateway_factory: GatewayFactory,
    worker_factory: WorkerFactory,
    shared_database: str,
    tmp_path: Path,
) -> Iterator[Scaled]:
    with scaled_cluster(
        gateway_factory,
        worker_factory,
        shared_database,
        tmp_path,
        prefix="wmrooms",
        agents=[{"id": "main", "default": True}, *AGENTS],
    ) as cluster:
        yield cluster


async def test_split_members_get_every_broadcast_once_in_order(rooms_cluster: Scaled):
    a, b = rooms_cluster.a, rooms_cluster.b
    async with (
        raw(a.url, "a1") as a1,
        raw(a.url, "a2") as a2,
        raw(b.url, "b1") as b1,
        raw(b.url, "b2") as b2,
    ):
        members = [a1, a2, b1, b2]
        ids = [await node_register(m, m.name) for m in members]
        gid = await node_join(a1, ids[0], "split")
        for m, node_id in zip(members[1:], ids[1:], strict=True):
            assert await node_join(m, node_id, "split") == gid
        senders = [(a1, ids[0]), (b1, ids[2])]
        for i in range(N):
            for sender, node_id in senders:
                payload = {"groupId": gid, "message": {"n": i, "from": node_id}}
                await sender.send({"type": "broadcast", "nodeId": node_id, "payload": payload})
        for m, node_id in zip(members, ids, strict=True):
            expected = {s: list(range(N)) for _, s in senders if s != node_id}
            got: dict[str, list[int]] = {s: [] for s in expected}
            total = sum(len(v) for v in expected.values())
            while sum(len(v) for v in got.values()) < total:
                f = await m.recv(10)
                if f["type"] == "broadcast":
                    assert f["nodeId"] != node_id, f"{m.name} got its own broadcast"
                    got[f["nodeId"]].append(f["payload"]["n"])
            assert got == expected, f"{m.name}: {got}"
            await m.silent(0.3, lambda f: f["type"] == "broadcast")  # nothing twice
        # a direct message from gateway B to a node on gateway A
        await b2.send(
            {
                "type": "direct",
                "nodeId": ids[3],
                "payload": {"targetNodeId": ids[1], "message": "hi"},
            }
        )
        got = (await a2.until(lambda f: f["type"] == "direct"))[-1]
        assert got["nodeId"] == ids[3] and got["payload"] == "hi"
        # both gateways see the four live members and the room
        for gw in (a, b):
            status, _, body = await ahttp_get(f"{gw.http_url}/stats", headers=AUTH)
            assert status == 200, body
            groups = json.loads(body)["groups"]["groups"]
            [split] = [g for g in groups if g["name"] == "split"]
            assert sorted(m["id"] for m in split["live"]) == sorted(ids), (gw.name, split)


async def test_room_runs_in_the_worker_stream_to_the_other_gateway(rooms_cluster: Scaled):
    a, b = rooms_cluster.a, rooms_cluster.b
    room = create_room(a, name="swarm", agent_ids=["planner", "coder", "critic"])
    async with raw(a.url, "asker") as asker, raw(b.url, "listener") as listener:
        await wingman_client(asker)
        lid = await node_register(listener, "listener")
        assert await node_join(listener, lid, room, by_id=True) == room
        await asker.send(
            {"type": "broadcast", "id": "x-1", "roomId": room, "payload": {"content": "go"}}
        )
        ack = await asker.recv()
        assert ack["type"] == "ack" and len(ack["payload"]["runIds"]) == 3, ack
        # the listener (a node on B) gets the question, then the three answers
        answers = set()
        frames = await listener.until(
            lambda f: (
                f["type"] == "broadcast"
                and f["nodeId"].startswith("agent:")
                and (answers.add(f["nodeId"]) or len(answers) == 3)
            ),
            timeout=30,
        )
        assert frames[0]["type"] == "broadcast" and frames[0]["payload"] == "go", frames[0]
        assert answers == {"agent:planner", "agent:coder", "agent:critic"}
        ended = set()
        await asker.until(
            lambda f: (
                f["type"] == "event:agent"
                and f["payload"]["type"] in TERMINAL
                and (ended.add(f["payload"]["runId"]) or len(ended) == 3)
            ),
            timeout=30,
        )
        assert ended == set(ack["payload"]["runIds"])

    async def members_gone() -> bool:
        status, _, body = await ahttp_get(f"{a.http_url}/stats", headers=AUTH)
        assert status == 200, body
        groups = json.loads(body)["groups"]["groups"]
        return all(not g["live"] for g in groups)

    await wait_until(members_gone, timeout=10, what="live members gone on disconnect")
    await asyncio.sleep(0)
