"""The ``routine`` event: published after commit for every change and every fire, to the
clients that subscribed to it (real ASGI app)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from agents.models import Agent
from gateway.delivery.hub import reset_hub
from gateway.protocol.events import RoutinePayload
from routines.services import (
    routine_create,
    routine_delete,
    routine_run_now,
    routine_set_enabled,
    routine_update,
)
from tests.gateway.communicator import Client
from tests.routines.beat import settled

pytestmark = pytest.mark.django_db(transaction=True)


async def routine_events(client: Client, count: int) -> list[dict]:
    out = []
    while len(out) < count:
        frame, _ = await client.recv_until(lambda f: f.get("event") == "routine", timeout=10)
        RoutinePayload.model_validate(frame["payload"])
        out.append(frame["payload"])
    return out


async def test_every_change_and_fire_is_published(backend):
    await database_sync_to_async(Agent.objects.create)(id="research", model="wingman:slow")
    client = Client()
    hello = await client.handshake()
    assert "routine" in hello["payload"]["features"]["events"]
    res = await client.call("subscribe", {"events": ["routine"]})
    assert res["ok"] and "routine" in res["payload"]["events"]
    routine = await database_sync_to_async(routine_create)(
        name="News", agent_id="research", prompt="/stream 20", cron="0 9 * * *", timezone="UTC"
    )
    await database_sync_to_async(routine_update)(routine_id=routine.pk, name="Daily news")
    await database_sync_to_async(routine_set_enabled)(routine_id=routine.pk, enabled=False)
    first = await routine_run_now(routine_id=routine.pk)
    second = await routine_run_now(routine_id=routine.pk)  # the first is still streaming
    assert first.ran and not second.ran and second.reason == "overlap"
    await settled()
    await database_sync_to_async(routine_delete)(routine_id=routine.pk)
    events = await routine_events(client, 7)
    actions = [e["action"] for e in events]
    assert actions == ["added", "updated", "updated", "started", "skipped", "finished", "removed"]
    added, renamed, disabled, started, skipped, finished, removed = events
    assert added["routineId"] == routine.pk and added["nextRunAtMs"] > added["ts"]
    assert renamed["name"] == "Daily news" and disabled["enabled"] is False
    assert "nextRunAtMs" not in disabled
    assert started["runId"] == first.run_id and started["status"] == "running"
    assert started["sessionKey"] == f"agent:research:routine:{routine.pk}"
    assert skipped["status"] == "skipped" and skipped["reason"].startswith("overlap")
    assert finished["runId"] == first.run_id and finished["status"] == "ok"
    assert finished["durationMs"] >= 0
    assert removed["routineId"] == routine.pk
    await client.close()
    await reset_hub()


async def test_a_refused_change_publishes_nothing(backend):
    await database_sync_to_async(Agent.objects.create)(id="research", model="wingman:echo")
    client = Client()
    await client.handshake()
    await client.call("subscribe", {"events": ["routine"]})
    with pytest.raises(Exception, match="cron"):
        await database_sync_to_async(routine_create)(
            name="x", agent_id="research", prompt="p", cron="bad cron"
        )
    seen = []
    while not await client.nothing(0.5):
        seen.append(await client.recv())
    assert not [f for f in seen if f.get("event") == "routine"], seen
    await client.close()
    await reset_hub()


async def test_openclaw_clients_get_the_same_news_as_cron_events(backend):
    """OpenClaw's CLI shape (OPENCLAW_CRON_NODES.md): {jobId, action, ...}; a skip is a
    finished run with status skipped."""
    await database_sync_to_async(Agent.objects.create)(id="research", model="wingman:slow")
    client = Client()
    hello = await client.handshake()
    assert "cron" in hello["payload"]["features"]["events"]
    await client.call("subscribe", {"events": ["cron"]})
    routine = await database_sync_to_async(routine_create)(
        name="News", agent_id="research", prompt="/stream 10", cron="0 9 * * *", timezone="UTC"
    )
    first = await routine_run_now(routine_id=routine.pk)
    second = await routine_run_now(routine_id=routine.pk)
    assert first.ran and not second.ran
    await settled()
    events = []
    while len(events) < 4:
        frame, _ = await client.recv_until(lambda f: f.get("event") == "cron", timeout=10)
        events.append(frame["payload"])
    assert [e["jobId"] for e in events] == [routine.pk] * 4
    added, started, skipped, finished = events
    assert added["action"] == "added"
    assert started["action"] == "started" and started["runId"] == first.run_id
    assert (skipped["action"], skipped["status"]) == ("finished", "skipped")
    assert (finished["action"], finished["status"], finished["runId"]) == (
        "finished",
        "ok",
        first.run_id,
    )
    await client.close()
    await reset_hub()
