"""The canonical ``routines.*`` methods through the real ASGI app."""

from __future__ import annotations

import asyncio

import pytest

from routines.models import Routine
from tests.agents.conftest import acreate_agent, hub_cleanup  # noqa: F401
from tests.gateway.communicator import Client
from tests.routines.conftest import STANDUP

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


@pytest.fixture
async def client(backend):
    await acreate_agent("main", is_default=True, name="Main")
    c = Client()
    await c.handshake()
    yield c
    await c.comm.disconnect()


async def count() -> int:
    return await Routine.objects.acount()


async def test_create_get_list_update_delete(client):
    created = await client.call("routines.create", STANDUP)
    assert created["ok"], created
    routine = created["payload"]
    assert routine["scheduleKind"] == "cron" and routine["cron"] == "0 9 * * 1-5"
    assert routine["target"] == "routine"
    assert routine["sessionKey"] == f"agent:main:routine:{routine['id']}"
    assert len(routine["nextRuns"]) == 5 and routine["nextRunAt"] == routine["nextRuns"][0]
    got = await client.call("routines.get", {"id": routine["id"]})
    assert got["payload"] == routine
    listed = await client.call("routines.list", {"agentId": "main"})
    assert [r["id"] for r in listed["payload"]["routines"]] == [routine["id"]]
    changed = await client.call(
        "routines.update",
        {"id": routine["id"], "every": "15m", "expectedRevision": routine["configRevision"]},
    )
    assert changed["ok"], changed
    assert changed["payload"]["scheduleKind"] == "every"
    assert changed["payload"]["everySeconds"] == 900
    stale = await client.call(
        "routines.update",
        {"id": routine["id"], "enabled": False, "expectedRevision": routine["configRevision"]},
    )
    assert stale["error"]["code"] == "CONFLICT"
    assert (await Routine.objects.aget(pk=routine["id"])).enabled
    deleted = await client.call("routines.delete", {"id": routine["id"]})
    assert deleted["payload"] == {"id": routine["id"], "deleted": True}
    missing = await client.call("routines.get", {"id": routine["id"]})
    assert missing["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "99 99 * * *"}, "cron"),
        ({"cron": "bad cron"}, "cron"),
        ({"cron": "0 9 * * 1 5"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"agentId": "nobody"}, "agentId"),
        ({"cron": None, "every": "soon"}, "every"),
        ({"target": "session", "sessionKey": "agent:main:nope"}, "sessionKey"),
    ],
)
async def test_bad_input_names_the_field_and_saves_nothing(client, change, field):
    params = {k: v for k, v in (STANDUP | change).items() if v is not None}
    res = await client.call("routines.create", params)
    assert not res["ok"] and res["error"]["code"] == "INVALID_REQUEST", res
    assert field in res["error"]["details"]["errors"], res["error"]
    assert res["error"]["message"].startswith(f"{field}:")
    assert await count() == 0


async def test_run_now_lands_in_the_thread_and_shows_in_runs(client):
    routine = (await client.call("routines.create", STANDUP))["payload"]
    started = await client.call("routines.run", {"id": routine["id"]})
    assert started["ok"], started
    assert started["payload"]["status"] == "accepted" and started["payload"]["runId"]
    assert started["payload"]["sessionKey"] == routine["sessionKey"]
    for _ in range(100):
        runs = (await client.call("routines.runs", {"id": routine["id"]}))["payload"]
        if runs["runs"] and runs["runs"][0]["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert runs["total"] == 1
    run = runs["runs"][0]
    assert run["runId"] == started["payload"]["runId"] and run["trigger"] == "manual"
    assert run["status"] == "ok", run
    history = await client.call("chat.history", {"sessionKey": routine["sessionKey"]})
    roles = [m["role"] for m in history["payload"]["messages"]]
    assert roles == ["user", "assistant"]
    after = (await client.call("routines.get", {"id": routine["id"]}))["payload"]
    assert after["lastStatus"] == "ok" and after["lastRunId"] == run["runId"]


async def test_unknown_routine_everywhere(client):
    for method in ("routines.get", "routines.delete", "routines.run", "routines.runs"):
        res = await client.call(method, {"id": "nope"})
        assert res["error"]["code"] == "NOT_FOUND", (method, res)
    res = await client.call("routines.update", {"id": "nope", "name": "x"})
    assert res["error"]["code"] == "NOT_FOUND"
