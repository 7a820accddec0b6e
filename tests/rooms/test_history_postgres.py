"""Room history's batched write on PostgreSQL (one ``COPY`` per batch), in a process of
its own on a fresh database: entries keep their payload (any JSON, or none) and their time;
an entry of a room deleted meanwhile is dropped, the rest of its batch is written, and every
waiter's future ends. (The same on SQLite, ``executemany``: tests/rooms/test_services.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.gateway.gateway_process import gateway_env, run_cli

pytestmark = [pytest.mark.postgres]

SCRIPT = """
import asyncio, json
from django.db import connection
from django.utils import timezone
from rooms import selectors
from rooms import services as rooms
from rooms.models import RoomMessage
from rooms.services.history import Entry, writer

kept = rooms.room_create(name="kept")
gone = rooms.room_create(name="gone")
rooms.room_delete(room_id=gone.id)
at = timezone.now()

def entry(room_id, bid, payload):
    return Entry(room_id, bid, "node", "n1", "one", f"text {bid}", payload, "", "", at)

async def write():
    return await asyncio.gather(
        writer().add(entry(kept.id, "b1", {"k": [1, "x", None], "ü": 1.5})),
        writer().add(entry(gone.id, "b2", {"k": 2})),
        writer().add(entry(kept.id, "b3", None)),
        *(writer().add(entry(kept.id, f"many{n}", {"n": n})) for n in range(100)),
    )

results = asyncio.run(write())
print(json.dumps({
    "vendor": connection.vendor,
    "results": results,
    "history": selectors.room_history(room_id=kept.id, limit=500),
    "stored": RoomMessage.objects.count(),
    "at": int(at.timestamp() * 1000),
}))
"""


def test_a_history_batch_on_postgresql_drops_only_the_entries_of_a_room_gone_meanwhile(
    shared_database: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, {"DATABASE_URL": shared_database})
    done = run_cli(["shell", "-c", SCRIPT], env, cmd=[sys.executable, "manage.py"])
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["vendor"] == "postgresql"
    assert out["results"] == [None] * 103
    history = out["history"]
    assert [(h["broadcastId"], h["content"], h.get("payload")) for h in history[:2]] == [
        ("b1", "text b1", {"k": [1, "x", None], "ü": 1.5}),
        ("b3", "text b3", None),
    ]
    assert [h["payload"] for h in history[2:]] == [{"n": n} for n in range(100)]
    assert {h["timestamp"] for h in history} == {out["at"]}
    assert history[0]["from"] == {"kind": "node", "id": "n1", "name": "one"}
    assert out["stored"] == 102
