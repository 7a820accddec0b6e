"""Presence across processes: a published delta is already in the shared list, so a client
that reacts to a ``connect`` by asking ``system-presence`` (on any process) finds it there."""

from __future__ import annotations

import uuid

import pytest

from gateway.delivery import presence


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["redis"], indirect=True)  # one process has no others
async def test_a_published_change_is_in_the_list_other_processes_read(backend):
    seen: list[tuple[set[str], set[str]]] = []
    reader = f"reader-{uuid.uuid4().hex[:8]}"

    async def publish(delta):
        # what another process answers at the moment the delta reaches its clients
        entries, _ = await presence.snapshot(reader, {})
        listed = {e["connId"] for e in entries}
        seen.append(({c["connId"] for c in delta["entries"]}, listed))

    tracker = presence.Tracker(f"writer-{uuid.uuid4().hex[:8]}", publish)
    tracker.add("c1", {"connId": "c1", "instanceId": "i1", "ts": 1})
    await tracker.flush()
    tracker.remove("c1", 2)
    tracker.add("c2", {"connId": "c2", "instanceId": "i2", "ts": 3})
    await tracker.flush()
    await tracker.close()
    assert seen == [({"c1"}, {"c1"}), ({"c1", "c2"}, {"c2"})], seen
