"""OpenClaw's ``cron.*`` methods driven with the frames the real OpenClaw CLI sent
(tests/fixtures/real-client-frames/openclaw-cron-frames.jsonl), through the real ASGI app:
every request gets an answer of the shape OPENCLAW_CRON_NODES.md says the CLI checks.

Ids the recording holds (the job id, the run id, the config revision the CLI read) are
replaced by the ones this gateway handed out earlier in the same replay, as the CLI would.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from typing import Any

import pytest

from agents.models import Message
from gateway.protocol import cron
from tests.agents.conftest import acreate_agent, hub_cleanup  # noqa: F401
from tests.fixtures import client_frames
from tests.gateway.communicator import Client
from tests.gateway.gateway_process import ws_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

RECORDED_JOB = "9b8ff91f-99b3-4945-b1be-311e3d1086c4"
RECORDED_RUN = "manual:9b8ff91f-99b3-4945-b1be-311e3d1086c4:1795994555839:2"
JOB_KEYS = {"id", "name", "enabled", "createdAtMs", "updatedAtMs", "schedule", "sessionTarget"}
JOB_KEYS |= {"wakeMode", "payload", "state", "agentId", "configRevision"}
STATUS_KEYS = {"enabled", "triggersEnabled", "storePath", "storage", "sqlitePath", "jobs"}
PAGE_KEYS = ("total", "offset", "limit", "hasMore", "nextOffset")


@pytest.fixture
async def openclaw(backend, wingman_auth):
    """The recording's gateway: token ``secret`` and a default agent ``main``."""
    wingman_auth("token", token="secret")
    await acreate_agent("main", is_default=True, name="Main")


class Replay:
    """Sends recorded connections one by one; remembers what the gateway answered."""

    def __init__(self, url: str | None = None) -> None:
        #: A real gateway's WebSocket URL; None: the ASGI app in this process.
        self.url = url
        self.job_id: str | None = None
        self.run_id: str | None = None
        self.revision: str | None = None
        self.removed = False
        self.answered: list[tuple[str, bool]] = []

    async def conn(self, frames: list[dict]) -> dict[str, Any]:
        """One CLI command: connect, one request, close. Returns the response frame."""
        if self.url is not None:
            return await self._conn_real(frames)
        client = Client()
        await client.open()
        await client.send(frames[0])
        hello = await client.recv_res()
        assert hello["ok"], hello
        request = self.substitute(frames[1])
        await client.send(request)
        res, _ = await client.recv_until(lambda f: f.get("id") == request["id"])
        await client.comm.disconnect()
        return res

    async def _conn_real(self, frames: list[dict]) -> dict[str, Any]:
        async with ws_client(self.url, name="openclaw-cli") as client:
            await client.send(frames[0])
            hello = await client.recv()
            assert hello["ok"], hello
            request = self.substitute(frames[1])
            await client.send(request)
            while (res := await client.recv()).get("id") != request["id"]:
                pass
        return res

    def substitute(self, frame: dict) -> dict:
        frame = copy.deepcopy(frame)
        params = frame["params"]
        if params.get("id") == RECORDED_JOB and self.job_id:
            params["id"] = self.job_id
        if params.get("runId") == RECORDED_RUN and self.run_id:
            params["runId"] = self.run_id
        if "expectedConfigRevision" in params and self.revision:
            params["expectedConfigRevision"] = self.revision
        return frame


def check_job(job: dict) -> None:
    assert set(job) >= JOB_KEYS, job
    assert job["schedule"]["kind"] in ("cron", "every", "at")
    assert job["payload"]["kind"] == "agentTurn"
    assert isinstance(job["state"], dict)


def check_page(page: dict, jobs_key: str) -> None:
    assert all(key in page for key in PAGE_KEYS), page
    count = len(page[jobs_key])
    assert page["hasMore"] == (page["offset"] + count < page["total"])
    assert page["nextOffset"] == (page["offset"] + count if page["hasMore"] else None)


async def check_answer(replay: Replay, request: dict, res: dict) -> None:
    """What OPENCLAW_CRON_NODES.md says the CLI reads from this method's answer."""
    method, params = request["method"], request["params"]
    replay.answered.append((method, res["ok"]))
    if params.get("id") == "weekday-standup" or (method == "cron.get" and replay.removed):
        assert not res["ok"], res
        error = res["error"]
        assert error["code"] == "INVALID_REQUEST"
        assert f"cron job not found: {params['id']}" in error["message"]
        assert error["details"] == {"code": "CRON_JOB_NOT_FOUND", "jobId": params["id"]}
        return
    assert res["ok"], res
    payload = res["payload"]
    if method == "cron.status":
        assert set(payload) >= STATUS_KEYS and isinstance(payload["enabled"], bool)
        assert payload["nextWakeAtMs"] is None or isinstance(payload["nextWakeAtMs"], int)
    elif method == "cron.list":
        assert isinstance(payload["snapshotRevision"], str)
        check_page(payload, "jobs")
        for job in payload["jobs"]:
            check_job(job)
            assert job["effectiveAgentId"] == "main"
            assert params["includeDisabled"] or job["enabled"]
    elif method == "cron.add":
        check_job(payload)
        assert set(payload["deliveryPreview"]) == {"label", "detail"}
        if replay.job_id is None:
            replay.job_id = payload["id"]
    elif method in ("cron.get", "cron.update"):
        check_job(payload)
        replay.revision = payload["configRevision"]
        if "enabled" in params.get("patch", {}):
            assert payload["enabled"] is params["patch"]["enabled"]
    elif method == "cron.run":
        assert payload["ok"] is True
        if payload.get("enqueued"):
            replay.run_id = payload["runId"]
        else:
            assert payload["ran"] is False and payload["reason"] == cron.ALREADY_RUNNING
    elif method == "cron.runs":
        check_page(payload, "entries")
        for entry in payload["entries"]:
            assert entry["jobId"] == replay.job_id and entry["action"] == "finished"
            assert entry["status"] in ("ok", "error", "skipped")
    elif method == "cron.remove":
        assert payload == {"ok": True, "removed": True}
        replay.removed = True


async def test_every_recorded_cron_request(openclaw):
    await replay_recording(Replay())


async def replay_recording(replay: Replay) -> None:
    """Every recorded connection in order, each answer checked; ids substituted."""
    for frames in client_frames("openclaw-cron-frames.jsonl").values():
        request = replay.substitute(frames[1])
        if request["method"] == "cron.runs" and "runId" in request["params"]:
            await wait_finished(replay, frames)
        res = await replay.conn(frames)
        await check_answer(replay, request, res)
    assert replay.job_id and replay.run_id
    assert {method for method, _ in replay.answered} == set(cron_methods())
    refused = [method for method, ok in replay.answered if not ok]
    assert refused == ["cron.get", "cron.get"]  # by name, and after cron.remove


def cron_methods() -> list[str]:
    return [
        f"cron.{m}" for m in ("status", "list", "get", "add", "update", "remove", "run", "runs")
    ]


async def wait_finished(replay: Replay, frames: list[dict]) -> None:
    """``cron run --wait`` polls until the run's entry is finished (bounded, like the CLI)."""
    for _ in range(100):
        res = await replay.conn(frames)
        entries = res["payload"]["entries"]
        if entries and entries[0]["status"] in ("ok", "error", "skipped"):
            assert entries[0]["runId"] == replay.run_id
            assert entries[0]["completionStatus"] == "succeeded"
            assert entries[0]["sessionKey"].startswith("agent:main:")
            assert isinstance(entries[0]["durationMs"], int)
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the run never finished")


async def test_stale_revision_is_refused_and_nothing_changes(openclaw):
    replay = Replay()
    add = client_frames("openclaw-cron-frames.jsonl")[3]
    job = (await replay.conn(add))["payload"]
    edit = client_frames("openclaw-cron-frames.jsonl")[18]
    edit = copy.deepcopy(edit)
    edit[1]["params"]["id"] = job["id"]  # the recorded (stale) revision stays
    res = await replay.conn(edit)
    assert not res["ok"]
    assert res["error"]["details"]["code"] == cron.JOB_CHANGED
    get = copy.deepcopy(client_frames("openclaw-cron-frames.jsonl")[8])
    get[1]["params"]["id"] = job["id"]
    after = (await replay.conn(get))["payload"]
    assert after["payload"]["message"] == "Summarize open PRs"
    assert after["configRevision"] == job["configRevision"]


async def test_bad_schedule_is_a_clear_error_and_nothing_is_saved(openclaw):
    replay = Replay()
    add = copy.deepcopy(client_frames("openclaw-cron-frames.jsonl")[3])
    add[1]["params"]["schedule"]["expr"] = "99 99 * * *"
    res = await replay.conn(add)
    assert not res["ok"] and res["error"]["code"] == "INVALID_REQUEST"
    assert "99 99 * * *" in res["error"]["message"] or "schedule" in res["error"]["message"]
    listing = await replay.conn(client_frames("openclaw-cron-frames.jsonl")[11])
    assert listing["payload"]["jobs"] == [] and listing["payload"]["total"] == 0


async def test_run_lands_in_the_routine_thread(openclaw):
    replay = Replay()
    job = (await replay.conn(client_frames("openclaw-cron-frames.jsonl")[3]))["payload"]
    replay.job_id = job["id"]
    res = await replay.conn(client_frames("openclaw-cron-frames.jsonl")[24])
    assert res["payload"]["enqueued"] is True
    replay.run_id = res["payload"]["runId"]
    await wait_finished(replay, client_frames("openclaw-cron-frames.jsonl")[26])
    key = f"agent:main:routine:{job['id']}"
    roles = [m.role async for m in Message.objects.filter(session__key=key).order_by("position")]
    assert roles == ["user", "assistant"]


async def cron_call(method: str, params: dict, scopes: list[str] | None = None) -> dict:
    """One request on a fresh OpenClaw CLI connection (token ``secret``; its connect frame
    asks for ``scopes``, default ``operator.admin``)."""
    connect = copy.deepcopy(client_frames("openclaw-cron-frames.jsonl")[3][0])
    connect["params"]["scopes"] = ["operator.admin"] if scopes is None else scopes
    request = {"type": "req", "id": f"2:{method}", "method": method, "params": params}
    return await Replay().conn([connect, request])


async def add_job(name: str, **fields) -> dict:
    params = {
        "name": name,
        "schedule": {"kind": "cron", "expr": "0 9 * * *"},
        "payload": {"kind": "agentTurn", "message": "hi"},
    } | fields
    res = await cron_call("cron.add", params)
    assert res["ok"], res
    return res["payload"]


async def test_list_pages_and_filters(openclaw):
    for n in range(5):
        await add_job(f"job-{n}", enabled=n != 4)
    page = (await cron_call("cron.list", {"limit": 2, "offset": 0}))["payload"]
    assert [j["name"] for j in page["jobs"]] == ["job-0", "job-1"]
    assert (page["total"], page["hasMore"], page["nextOffset"]) == (4, True, 2)
    last = (await cron_call("cron.list", {"limit": 2, "offset": 2}))["payload"]
    assert [j["name"] for j in last["jobs"]] == ["job-2", "job-3"]
    assert (last["hasMore"], last["nextOffset"]) == (False, None)
    every = (await cron_call("cron.list", {"includeDisabled": True}))["payload"]
    assert every["total"] == 5
    found = (await cron_call("cron.list", {"includeDisabled": True, "query": "job-4"}))["payload"]
    assert [j["name"] for j in found["jobs"]] == ["job-4"]
    assert set(found["deliveryPreviews"]) == {found["jobs"][0]["id"]}
    assert (
        page["snapshotRevision"]
        == (await cron_call("cron.list", {"limit": 2}))["payload"]["snapshotRevision"]
    )
    await cron_call("cron.update", {"id": page["jobs"][0]["id"], "patch": {"name": "renamed"}})
    again = (await cron_call("cron.list", {"limit": 2}))["payload"]
    assert again["snapshotRevision"] != page["snapshotRevision"]


async def test_every_at_and_session_targets(openclaw):
    job = await add_job(
        "often",
        schedule={"kind": "every", "everyMs": 900_000},
        payload={"kind": "systemEvent", "text": "check"},
    )
    assert job["schedule"] == {"kind": "every", "everyMs": 900_000}
    assert job["sessionTarget"] == "main" and job["sessionKey"] == "agent:main:main"
    once = await add_job(
        "once", schedule={"kind": "at", "at": "2099-12-24T18:00:00+01:00"}, deleteAfterRun=True
    )
    assert once["schedule"]["kind"] == "at" and once["deleteAfterRun"] is True
    at = datetime.fromisoformat("2099-12-24T18:00:00+01:00")
    assert once["state"]["nextRunAtMs"] == int(at.timestamp() * 1000)
    missing = await cron_call(
        "cron.add",
        {
            "name": "x",
            "schedule": {"kind": "cron", "expr": "@daily"},
            "payload": {"kind": "agentTurn", "message": "m"},
            "sessionTarget": "session:agent:main:nope",
        },
    )
    assert not missing["ok"] and "sessionTarget" in missing["error"]["message"]
    refused = await cron_call(
        "cron.add",
        {
            "name": "x",
            "schedule": {"kind": "every", "everyMs": 1500},
            "payload": {"kind": "agentTurn", "message": "m"},
        },
    )
    assert not refused["ok"] and "schedule.everyMs" in refused["error"]["message"]


async def test_run_due_and_filters(openclaw):
    job = await add_job("later", schedule={"kind": "cron", "expr": "0 9 1 1 *"})
    res = await cron_call("cron.run", {"id": job["id"], "mode": "due"})
    assert res["payload"] == {"ok": True, "ran": False, "reason": cron.NOT_DUE}
    missing = await cron_call("cron.run", {"id": "nope", "mode": "force"})
    assert missing["error"]["details"] == {"code": "CRON_JOB_NOT_FOUND", "jobId": "nope"}
    runs = await cron_call("cron.runs", {"id": "nope"})
    assert runs["error"]["details"]["code"] == "CRON_JOB_NOT_FOUND"
    empty = (await cron_call("cron.runs", {"id": job["id"], "status": "error"}))["payload"]
    assert empty["entries"] == [] and empty["total"] == 0 and empty["hasMore"] is False


async def test_scopes_the_connection_asked_for(openclaw):
    job = await add_job("scoped")
    read_only = ["operator.read"]
    refused = await cron_call(
        "cron.update", {"id": job["id"], "patch": {"enabled": False}}, read_only
    )
    assert refused["error"]["code"] == "FORBIDDEN"
    assert refused["error"]["message"].startswith("missing scope: operator.admin")
    assert refused["error"]["details"]["scope"] == "operator.admin"
    for method, params in (("cron.remove", {"id": job["id"]}), ("cron.run", {"id": job["id"]})):
        assert (await cron_call(method, params, read_only))["error"]["code"] == "FORBIDDEN"
    assert (await cron_call("cron.list", {}, read_only))["ok"]
    assert (await cron_call("cron.get", {"id": job["id"]}, ["operator.write"]))["ok"]
    pairing = await cron_call("cron.status", {}, ["operator.pairing"])
    assert pairing["error"]["message"].startswith("missing scope: operator.read")
    assert (await cron_call("cron.remove", {"id": job["id"]}, []))["ok"]  # asked for none
    gone = await cron_call("cron.remove", {"id": job["id"]})
    assert gone["error"]["details"] == {"code": "CRON_JOB_NOT_FOUND", "jobId": job["id"]}
