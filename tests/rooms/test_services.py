"""Room services: rooms and member agents, limits, live membership, broadcasts with both
strategies (parallel truly concurrent, sequential seeing the answers before), sender
exclusion, no agent re-trigger, history that survives a restart of the hub."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from agents.models import Run, Session
from gateway.delivery.hub import reset_hub
from gateway.protocol.errors import ErrorCode, GatewayError
from rooms import selectors
from rooms import services as rooms
from rooms.models import Room, RoomAgent, RoomMessage
from rooms.services.history import Entry, writer
from tests.agents.conftest import quiet
from tests.rooms.conftest import acreate_agent, answers, canonical_client, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


async def _agents(*ids: str, model: str = "wingman:echo") -> list[str]:
    for agent_id in ids:
        await acreate_agent(agent_id, model=model)
    return list(ids)


async def test_room_crud_and_member_agents():
    await _agents("planner", "implementor", "reviewer")
    room = await db(rooms.room_create)(
        name="Review", strategy="sequential", agent_ids=["planner", "implementor"], created_by="t"
    )
    assert len(room.id) == 16 and int(room.id, 16) >= 0
    data = await db(selectors.room_detail)(room_id="Review")  # by name, too
    assert data["agents"] == ["planner", "implementor"] and data["strategy"] == "sequential"
    await db(rooms.room_agent_add)(room_id=room.id, agent_id="reviewer")
    assert await db(selectors.room_agent_ids)(room_id=room.id) == [
        "planner",
        "implementor",
        "reviewer",
    ]
    await db(rooms.room_update)(room_id=room.id, agent_ids=["reviewer", "planner"], name="R2")
    assert (await db(selectors.room_detail)(room_id=room.id))["agents"] == ["reviewer", "planner"]
    await db(rooms.room_agent_remove)(room_id=room.id, agent_id="planner")
    slug = await db(rooms.room_create)(name="Slugged", room_id="swarm-1")
    assert slug.id == "swarm-1"
    assert [r["name"] for r in await db(selectors.room_list)()] == ["R2", "Slugged"]
    await db(rooms.room_delete)(room_id=room.id)
    assert not await RoomAgent.objects.filter(room_id=room.id).aexists()
    assert await Room.objects.acount() == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "taken"}, ErrorCode.CONFLICT),
        ({"name": "x", "strategy": "random"}, ErrorCode.INVALID_REQUEST),
        ({"name": "x", "agent_ids": ["ghost"]}, ErrorCode.NOT_FOUND),
        ({"name": "x", "room_id": "bad id!"}, ErrorCode.INVALID_REQUEST),
        ({"name": "  "}, ErrorCode.INVALID_REQUEST),
    ],
)
async def test_room_create_refuses_bad_input_and_changes_nothing(kwargs, code):
    await db(rooms.room_create)(name="taken")
    with pytest.raises(GatewayError) as err:
        await db(rooms.room_create)(**kwargs)
    assert err.value.code == code
    assert await Room.objects.acount() == 1


async def test_limits_max_rooms_and_max_members(monkeypatch, hub_cleanup):
    monkeypatch.setenv("WINGMAN_ROOMS_MAX", "2")
    monkeypatch.setenv("WINGMAN_ROOM_MAX_MEMBERS", "2")
    await _agents("a1", "a2", "a3")
    await db(rooms.room_create)(name="one", agent_ids=["a1"])
    await db(rooms.room_create)(name="two")
    with pytest.raises(GatewayError) as err:
        await db(rooms.room_create)(name="three")
    assert err.value.code == ErrorCode.CONFLICT and err.value.details["limit"] == 2
    with pytest.raises(GatewayError) as err:
        await db(rooms.room_create)(name="x", agent_ids=["a1", "a2", "a3"])
    assert err.value.details["limitName"] == "maxRooms" or err.value.code == ErrorCode.CONFLICT
    c1, id1 = await canonical_client()
    c2, id2 = await canonical_client()
    await rooms.room_join(room_id="one", conn_id=id1)  # a1 + 1 connection = 2
    with pytest.raises(GatewayError) as err:
        await rooms.room_join(room_id="one", conn_id=id2)
    assert err.value.details["limitName"] == "maxMembersPerRoom"
    assert len((await rooms.room_members(room_id="one"))["live"]) == 1
    await c1.close()
    await c2.close()


async def test_join_leave_and_disconnect_are_live(hub_cleanup):
    room = await db(rooms.room_create)(name="lobby")
    alice, alice_id = await canonical_client()
    bob, bob_id = await canonical_client()
    _, joined = await rooms.room_join(room_id="lobby", conn_id=alice_id, name="alice")
    assert joined
    await rooms.room_join(room_id=room.id, conn_id=bob_id, name="bob")
    event, _ = await alice.recv_until(lambda f: f.get("event") == "room.member")
    assert event["payload"]["action"] == "join" and event["payload"]["member"]["name"] == "bob"
    members = await rooms.room_members(room_id=room.id)
    assert [m["name"] for m in members["live"]] == ["alice", "bob"]
    await bob.close()
    event, _ = await alice.recv_until(lambda f: f.get("event") == "room.member")
    assert event["payload"]["action"] == "leave" and event["payload"]["reason"] == "disconnect"
    assert [m["name"] for m in (await rooms.room_members(room_id=room.id))["live"]] == ["alice"]
    assert await rooms.room_leave(room_id=room.id, conn_id=alice_id)
    assert not await rooms.room_leave(room_id=room.id, conn_id=alice_id)
    assert (await rooms.room_members(room_id=room.id))["live"] == []
    await alice.close()


async def test_broadcast_reaches_members_but_not_the_sender(hub_cleanup):
    room = await db(rooms.room_create)(name="chat")
    alice, alice_id = await canonical_client()
    bob, bob_id = await canonical_client()
    await rooms.room_join(room_id=room.id, conn_id=alice_id)
    await rooms.room_join(room_id=room.id, conn_id=bob_id)
    await alice.recv_until(lambda f: f.get("event") == "room.member")
    result = await rooms.room_broadcast(room_id=room.id, message="hi all", sender_conn_id=alice_id)
    assert result["runIds"] == [] and result["strategy"] == "parallel"
    event, _ = await bob.recv_until(lambda f: f.get("event") == "room.message")
    assert event["payload"]["content"] == "hi all"
    assert event["payload"]["from"] == {"kind": "client", "id": alice_id, "name": alice_id}
    await quiet(alice, 0.3, lambda f: f.get("event") == "room.message")  # sender exclusion
    await rooms.history_flush()
    history = await db(selectors.room_history)(room_id=room.id)
    assert [h["content"] for h in history] == ["hi all"]
    await alice.close()
    await bob.close()


async def _run_intervals(run_ids: list[str]) -> list[tuple]:
    runs = [r async for r in Run.objects.filter(pk__in=run_ids)]
    return [(r.started_at, r.ended_at, r.status) for r in runs]


async def test_parallel_runs_overlap_and_answers_never_retrigger(hub_cleanup):
    ids = await _agents("p1", "p2", "p3", model="wingman:slow")
    room = await db(rooms.room_create)(name="swarm", agent_ids=ids)
    watcher, watcher_id = await canonical_client()
    await rooms.room_join(room_id=room.id, conn_id=watcher_id)
    result = await rooms.room_broadcast(
        room_id=room.id, message="/stream 6", sender=rooms.Sender(kind="user", id="tester")
    )
    assert [r["agentId"] for r in result["runs"]] == ids
    assert {r["sessionKey"] for r in result["runs"]} == {f"agent:{a}:room:{room.id}" for a in ids}
    await wait_until(lambda: _count_answers(room.id, 3), timeout=20, what="three answers")
    intervals = await _run_intervals(result["runIds"])
    assert all(status == "ok" for *_, status in intervals), intervals
    latest_start = max(s for s, _, _ in intervals)
    earliest_end = min(e for _, e, _ in intervals)
    assert latest_start < earliest_end, f"runs did not overlap: {intervals}"
    # the watcher saw the three runs' events, tagged with room, agent and run
    seen: set[tuple] = set()
    for _ in range(400):
        frame = await watcher.recv(5)
        p = frame.get("payload") or {}
        if frame.get("event") == "agent" and p.get("type") == "agent-complete":
            seen.add((p["roomId"], p["agentId"], p["runId"]))
        if len(seen) == 3:
            break
    assert seen == {(room.id, r["agentId"], r["runId"]) for r in result["runs"]}
    # answers were relayed to the room but started nothing
    await quiet(watcher, 0.5, lambda f: f.get("payload", {}).get("type") == "agent-start")
    assert await Run.objects.acount() == 3
    agent_sender = rooms.Sender(kind="agent", id="p1")
    relayed = await rooms.room_broadcast(room_id=room.id, message="loop?", sender=agent_sender)
    assert relayed["runIds"] == [] and await Run.objects.acount() == 3
    await watcher.close()


async def _count_answers(room_id: str, n: int) -> bool:
    return len(await answers(room_id)) >= n


async def test_sequential_each_agent_sees_the_answers_before(hub_cleanup):
    ids = await _agents("planner", "implementor", "reviewer")
    room = await db(rooms.room_create)(name="pipeline", strategy="sequential", agent_ids=ids)
    result = await rooms.room_broadcast(
        room_id=room.id, message="review PR #123", sender=rooms.Sender(kind="user", id="me")
    )
    assert [r["agentId"] for r in result["runs"]] == ["planner"]
    assert result["pending"] == ["implementor", "reviewer"]
    await wait_until(lambda: _count_answers(room.id, 3), timeout=20, what="three answers")
    got = await answers(room.id)
    assert [a.sender_id for a in got] == ids
    runs = {r.session.agent_id: r async for r in Run.objects.select_related("session")}
    assert runs["planner"].prompt == "review PR #123"
    assert "[planner] (ok): You said: review PR #123" in runs["implementor"].prompt
    assert "[implementor] (ok):" in runs["reviewer"].prompt
    assert runs["planner"].ended_at <= runs["implementor"].started_at
    assert runs["implementor"].ended_at <= runs["reviewer"].started_at


async def test_history_and_room_sessions_survive_a_restart(hub_cleanup):
    await _agents("keeper")
    room = await db(rooms.room_create)(name="durable", agent_ids=["keeper"])
    sender = rooms.Sender(kind="user", id="me")
    await rooms.room_broadcast(room_id=room.id, message="first", sender=sender)
    await wait_until(lambda: _count_answers(room.id, 1), timeout=10, what="an answer")
    await reset_hub()  # the process's live state is gone; the database is not
    await rooms.room_broadcast(room_id="durable", message="second", sender=sender)
    await wait_until(lambda: _count_answers(room.id, 2), timeout=10, what="second answer")
    await rooms.history_flush()
    history = await db(selectors.room_history)(room_id=room.id)
    assert [(h["from"]["kind"], h["content"]) for h in history] == [
        ("user", "first"),
        ("agent", "You said: first"),
        ("user", "second"),
        ("agent", "You said: second"),
    ]
    assert history[1]["runId"] and history[1]["status"] == "ok"
    session = await Session.objects.aget(key=f"agent:keeper:room:{room.id}")
    assert session.message_count == 4  # one continued session: both turns
    assert await RoomMessage.objects.acount() == 4


async def test_a_history_batch_drops_only_the_entries_of_a_room_gone_meanwhile():
    """The batched insert: entries keep their payload (any JSON, or none) and the time
    they were published; an entry of a room deleted meanwhile is dropped, the rest of its
    batch is written, and every waiter's future ends."""
    kept = await db(rooms.room_create)(name="kept")
    gone = await db(rooms.room_create)(name="gone")
    await db(rooms.room_delete)(room_id=gone.id)
    at = timezone.now()

    def entry(room_id: str, bid: str, payload) -> Entry:
        return Entry(room_id, bid, "node", "n1", "one", f"text {bid}", payload, "", "", at)

    futures = [
        writer().add(entry(kept.id, "b1", {"k": [1, "x", None], "ü": 1.5})),
        writer().add(entry(gone.id, "b2", {"k": 2})),
        writer().add(entry(kept.id, "b3", None)),
    ]
    assert await asyncio.gather(*futures) == [None, None, None]
    history = await db(selectors.room_history)(room_id=kept.id)
    assert [(h["broadcastId"], h["content"], h.get("payload")) for h in history] == [
        ("b1", "text b1", {"k": [1, "x", None], "ü": 1.5}),
        ("b3", "text b3", None),
    ]
    assert {h["timestamp"] for h in history} == {int(at.timestamp() * 1000)}
    assert history[0]["from"] == {"kind": "node", "id": "n1", "name": "one"}
    assert await RoomMessage.objects.acount() == 2
