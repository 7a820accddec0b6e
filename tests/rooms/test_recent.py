"""The per-process memory of rooms (``rooms/runtime/recent.py``) and what a broadcast costs
the database: a swarm's rooms are read again together about once per cache period, not
once per stale room, and a broadcast to a cached room runs no query whatever the size of
the history; it returns once its history entry is stored."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rooms import selectors
from rooms import services as rooms
from rooms.models import Room, RoomMessage, SenderKind
from rooms.runtime import recent

db = database_sync_to_async


@pytest.fixture
def fresh_recent(monkeypatch):
    monkeypatch.setattr(recent, "ROOM_CACHE_SECONDS", 0.05)
    recent.forget()
    recent._stale.clear()
    yield
    recent.forget()
    recent._stale.clear()


async def test_stale_rooms_are_read_again_together(fresh_recent):
    """100 rooms looked up over and over for 0.5 s (ten cache periods): the loader runs
    about once a period, however many stale lookups there are."""
    loads: list[list[str]] = []

    async def load(keys: list[str]) -> dict:
        loads.append(keys)
        await asyncio.sleep(0.002)  # a database round trip
        return {k: (Room(id=k, name=f"n-{k}"), []) for k in keys}

    keys = [f"r{i}" for i in range(100)]
    for key in keys:
        assert (await recent.lookup(key, load))[0].id == key
    assert len(loads) == 100  # each unknown room loaded once
    loads.clear()
    deadline = asyncio.get_running_loop().time() + 0.5
    lookups = 0
    while asyncio.get_running_loop().time() < deadline:
        for key in keys:
            await recent.lookup(key, load)
            lookups += 1
            await asyncio.sleep(0)
        await asyncio.sleep(0.001)
    assert lookups > 1000
    assert 5 <= len(loads) <= 25, len(loads)  # ~once per 0.05 s period, rooms together
    # (which rooms are stale when a refresh starts depends on the timing: most, not one)
    assert max(len(k) for k in loads) >= 90, [len(k) for k in loads]


@pytest.mark.django_db(transaction=True)
async def test_a_broadcast_runs_no_query_whatever_the_history_and_returns_stored(hub_cleanup):
    room = await db(rooms.room_create)(name="swarm")
    old = [
        RoomMessage(room_id=room.id, broadcast_id=f"{i:032x}", sender_kind="node", content="x")
        for i in range(3000)
    ]
    await db(RoomMessage.objects.bulk_create)(old, batch_size=500)
    sender = rooms.Sender(kind=SenderKind.NODE, id="n1", name="n1")
    await rooms.room_broadcast(room_id=room.id, message="warm", sender=sender)  # cached now

    async def broadcasts(count: int) -> list[str]:
        # Entered and left on the database thread, where every query of the rooms runs.
        queries = CaptureQueriesContext(connection)
        await db(queries.__enter__)()
        try:
            sent = await asyncio.gather(
                *(
                    rooms.room_broadcast(room_id=room.id, message=f"m{i}", sender=sender)
                    for i in range(count)
                )
            )
        finally:
            await db(queries.__exit__)(None, None, None)
        assert len({s["broadcastId"] for s in sent}) == count
        return await db(lambda: [q["sql"] for q in queries.captured_queries])()

    sql = await broadcasts(50)
    # Stored when they returned: one batch, in one transaction; nothing read.
    assert await RoomMessage.objects.filter(content__startswith="m").acount() == 50
    assert not [q for q in sql if q.lstrip().upper().startswith("SELECT")], sql
    assert sum('INSERT INTO "rooms_roommessage"' in q for q in sql) == 1, sql
    history = await db(selectors.room_history)(room_id=room.id, limit=51)
    assert [h["content"] for h in history] == ["warm", *[f"m{i}" for i in range(50)]]
