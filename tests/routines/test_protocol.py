"""The routines wire models and the cron ⇄ routine translation, without a socket."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.protocol import cron
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.routines import (
    RoutineCreateParams,
    RoutineRunView,
    RoutineUpdateParams,
    RoutineView,
)
from tests.fixtures import client_frames

CRON_PARAMS = {
    "cron.status": None,
    "cron.list": cron.CronListParams,
    "cron.get": cron.JobIdParams,
    "cron.add": cron.CronAddParams,
    "cron.update": cron.CronUpdateParams,
    "cron.remove": cron.JobIdParams,
    "cron.run": cron.CronRunParams,
    "cron.runs": cron.CronRunsParams,
}


def recorded_requests() -> list[dict]:
    frames = client_frames("openclaw-cron-frames.jsonl")
    return [f for conn in frames.values() for f in conn if f["method"] != "connect"]


@pytest.mark.parametrize("frame", recorded_requests(), ids=lambda f: f["method"])
def test_every_recorded_cron_request_validates(frame):
    model = CRON_PARAMS[frame["method"]]
    if model is None:
        assert frame["params"] == {}
    else:
        model.model_validate(frame["params"])


def recorded(method: str) -> list[dict]:
    return [f["params"] for f in recorded_requests() if f["method"] == method]


def test_add_agent_turn_isolated_is_a_thread_routine():
    params = cron.CronAddParams.model_validate(recorded("cron.add")[0])
    assert cron.routine_fields(params) == {
        "name": "weekday-standup",
        "enabled": True,
        "agent_id": "main",
        "schedule_kind": "cron",
        "cron": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "prompt": "Summarize open PRs",
        "target_kind": "routine",
        "target_session_key": "",
    }


def test_add_every_system_event_main():
    params = cron.CronAddParams.model_validate(recorded("cron.add")[1])
    fields = cron.routine_fields(params)
    assert fields["schedule_kind"] == "every" and fields["every"] == 3600
    assert fields["prompt"] == "hourly check"
    assert fields["target_kind"] == "main" and "agent_id" not in fields


def test_intervals_are_seconds():
    whole = cron.schedule_fields(cron.CronEvery(kind="every", everyMs=900_000))
    assert whole == {"schedule_kind": "every", "every": 900}
    assert cron.schedule_fields(cron.CronEvery(kind="every", everyMs=1500))["every"] == 1.5
    at = cron.schedule_fields(cron.CronAt(kind="at", at="2026-12-24T18:00+01:00"))
    assert at == {"schedule_kind": "at", "at": "2026-12-24T18:00+01:00"}


def test_session_targets():
    assert cron.target_fields("session:agent:main:main") == {
        "target_kind": "session",
        "target_session_key": "agent:main:main",
    }
    with pytest.raises(GatewayError):
        cron.target_fields("current")
    with pytest.raises(ValidationError):
        cron.JobFields.model_validate({"sessionTarget": "elsewhere"})


def test_update_patch_carries_only_what_it_sets():
    enable, _, edit = (cron.CronUpdateParams.model_validate(p) for p in recorded("cron.update")[:3])
    assert cron.routine_fields(enable.patch) == {"enabled": False}
    assert edit.expected_config_revision == "27f65e52074cb6f0"
    assert cron.routine_fields(edit.patch) == {
        "schedule_kind": "cron",
        "cron": "0 9 * * 1-5",
        "timezone": "UTC",
        "prompt": "Summarize open PRs and CI",
    }


def test_unsupported_kinds_are_named():
    with pytest.raises(ValidationError) as err:
        cron.CronAddParams.model_validate(
            {
                "name": "x",
                "schedule": {"kind": "on-exit", "command": "ls"},
                "payload": {"kind": "agentTurn", "message": "m"},
            }
        )
    assert "on-exit" in str(err.value)


def test_not_found_error_is_what_the_cli_reads():
    error = cron.job_not_found("weekday-standup").as_dict()
    assert error["code"] == ErrorCode.INVALID_REQUEST
    assert "cron job not found: weekday-standup" in error["message"]
    assert error["details"] == {"code": "CRON_JOB_NOT_FOUND", "jobId": "weekday-standup"}


ROUTINE = {
    "id": "r1",
    "name": "standup",
    "description": "",
    "agentId": "main",
    "schedule": "0 9 * * 1-5",
    "cron": "0 9 * * 1-5",
    "scheduleKind": "cron",
    "timezone": "Europe/Berlin",
    "prompt": "Summarize",
    "enabled": True,
    "target": "routine",
    "sessionKey": "agent:main:routine:r1",
    "deleteAfterRun": False,
    "createdAt": 1,
    "updatedAt": 2,
    "nextRunAt": 3,
    "lastStatus": "cancelled",
    "lastRunAt": 2,
    "consecutiveErrors": 1,
    "configRevision": "7",
}


def test_job_view_of_a_routine():
    RoutineView.model_validate(ROUTINE)
    job = cron.job_view(ROUTINE)
    assert job["schedule"] == {"kind": "cron", "expr": "0 9 * * 1-5", "tz": "Europe/Berlin"}
    assert job["sessionTarget"] == "isolated"
    assert job["payload"] == {"kind": "agentTurn", "message": "Summarize"}
    assert job["state"]["nextRunAtMs"] == 3 and job["nextRunAtMs"] == 3
    assert job["lastRunStatus"] == "error" and job["state"]["consecutiveErrors"] == 1
    every = cron.job_view(ROUTINE | {"scheduleKind": "every", "everySeconds": 60, "target": "main"})
    assert every["schedule"] == {"kind": "every", "everyMs": 60_000}
    assert every["sessionTarget"] == "main"


def test_page_fields_are_consistent():
    assert cron.page([1, 2], total=5, offset=0, limit=2) == {
        "total": 5,
        "offset": 0,
        "limit": 2,
        "hasMore": True,
        "nextOffset": 2,
    }
    last = cron.page([5], total=5, offset=4, limit=2)
    assert last["hasMore"] is False and last["nextOffset"] is None


def test_run_entries_say_how_runs_completed():
    base = {"id": 1, "routineId": "r1", "sessionKey": "k", "runId": "run1", "trigger": "manual"}
    base |= {"startedAt": 5, "endedAt": 9}
    RoutineRunView.model_validate(base | {"status": "ok"})
    ok = cron.run_entry(base | {"status": "ok", "durationMs": 4}, job_name="n")
    assert ok["status"] == "ok" and ok["completionStatus"] == "succeeded"
    assert ok["ts"] == 9 and ok["runAtMs"] == 5 and ok["durationMs"] == 4
    assert "error" not in ok
    failed = cron.run_entry(base | {"status": "timeout", "reason": "boom"}, job_name="n")
    assert failed["status"] == "error" and failed["completionStatus"] == "failed"
    assert failed["error"] == "boom"
    skipped = {"id": 2, "routineId": "r1", "sessionKey": "k", "runId": None}
    skipped |= {"status": "skipped", "scheduledAt": 3, "reason": "overlap"}
    entry = cron.run_entry(skipped, job_name="n")
    assert entry["status"] == "skipped" and "runId" not in entry and entry["ts"] == 3


def test_canonical_params_take_seed_names():
    params = RoutineCreateParams.model_validate(
        {"name": "n", "agentId": "main", "cron": "@daily", "prompt": "p", "sessionId": "s"}
    )
    assert params.schedule_kind == "cron" and params.target_session_key == "s"
    assert params.changes()["schedule_kind"] == "cron"
    with pytest.raises(ValidationError, match="one schedule"):
        RoutineCreateParams.model_validate(
            {"name": "n", "agentId": "a", "cron": "@daily", "every": "15m", "prompt": "p"}
        )
    with pytest.raises(ValidationError, match="schedule is required"):
        RoutineCreateParams.model_validate({"name": "n", "agentId": "a", "prompt": "p"})
    update = RoutineUpdateParams.model_validate({"id": "r1", "enabled": False})
    assert update.changes() == {"enabled": False}
    nulls = {"id": "r1", "enabled": None, "name": None, "timezone": None, "sessionKey": None}
    assert RoutineUpdateParams.model_validate(nulls).changes() == {
        "timezone": None,
        "target_session_key": None,
    }
    with pytest.raises(ValidationError):
        RoutineCreateParams.model_validate({"name": "n", "agentId": "a", "cron": "x", "bogus": 1})
    with pytest.raises(ValidationError):
        RoutineCreateParams.model_validate(
            {"name": " ", "agentId": "a", "cron": "x", "prompt": "p"}
        )


def test_cron_event_of_routine_events():
    assert cron.cron_event({"action": "added", "routineId": "r1", "ts": 5}) == {
        "jobId": "r1",
        "action": "added",
    }
    started = cron.cron_event({"action": "started", "routineId": "r1", "runId": "x", "ts": 5})
    assert started == {"jobId": "r1", "action": "started", "runAtMs": 5, "runId": "x"}
    skipped = {"action": "skipped", "routineId": "r1", "reason": "overlap", "scheduledAtMs": 7}
    assert cron.cron_event(skipped | {"ts": 9}) == {
        "jobId": "r1",
        "action": "finished",
        "status": "skipped",
        "runAtMs": 7,
        "error": "overlap",
    }
    finished = {"action": "finished", "routineId": "r1", "status": "timeout", "ts": 9}
    assert cron.cron_event(finished)["status"] == "error"
