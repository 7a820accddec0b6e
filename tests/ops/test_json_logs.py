"""``WINGMAN_LOG_FORMAT=json``: a real gateway writes its log records as one JSON object per
line, carrying the run id (and session, connection) of the run they are about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agents.test_e2e_agents import run_agent
from tests.gateway.gateway_process import (
    GatewayFactory,
    connected,
    gateway_env,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.e2e


def json_lines(log: str) -> list[dict]:
    """The log's JSON records (the startup banner is printed text, not log records)."""
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


async def test_json_log_lines_carry_the_run(gateway_factory: GatewayFactory) -> None:
    env = {"WINGMAN_LOG_FORMAT": "json", "WINGMAN_LOG_LEVEL": "debug"}
    gw = gateway_factory(env, name="json")
    async with connected(gw, name="json-client") as c:
        ack, final, _ = await run_agent(c, {"message": "log me"})
    assert final["status"] == "ok"
    run_id = ack["runId"]
    ended = f"run {run_id} ended: ok"

    async def ended_logged() -> bool:  # logged once the end is persisted and published
        return ended in gw.log()

    await wait_until(ended_logged, timeout=5, what="the run's end logged")
    records = json_lines(gw.log())
    assert records, gw.log_tail()
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    about_run = [r for r in records if r.get("runId") == run_id]
    messages = [r["message"] for r in about_run]
    assert f"run {run_id} started (agent main)" in messages, records
    assert ended in messages, records
    for record in about_run:
        assert record["sessionKey"] == ack["sessionKey"] == "agent:main:main"
    for message in (f"run {run_id} started (agent main)", ended):
        (record,) = [r for r in about_run if r["message"] == message]
        assert record["level"] == "INFO" and record["logger"] == "agents.services.runs.execute"
    # the connection's own lines carry its connId (and no run)
    (hello,) = [r for r in records if r["message"].endswith(" connected (canonical, 127.0.0.1)")]
    assert hello["connId"] == hello["message"].split()[0] and "runId" not in hello, hello
    assert hello["level"] == "DEBUG" and hello["logger"] == "gateway.ws.connection"


async def test_default_log_format_stays_text(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(name="text")
    async with connected(gw) as c:
        ack, _, _ = await run_agent(c, {"message": "log me"})
    lines = [line for line in gw.log().splitlines() if f"run {ack['runId']} started" in line]
    assert lines and " INFO agents.services.runs.execute: run " in lines[0], gw.log_tail()
    assert not json_lines(gw.log())


def test_unknown_log_format_is_one_line(tmp_path: Path) -> None:
    done = run_cli(["gateway", "status"], gateway_env(tmp_path, {"WINGMAN_LOG_FORMAT": "xml"}))
    assert done.returncode == 2, done
    assert done.stderr.strip() == (
        "wingman: config error: WINGMAN_LOG_FORMAT: expected text or json, got 'xml'"
    )


@pytest.mark.redis
@pytest.mark.postgres
async def test_worker_json_logs_carry_the_run(
    gateway_factory: GatewayFactory, worker_factory, shared_database: str, tmp_path: Path
) -> None:
    """In the scaled setup the run executes in the Celery worker: its lines are JSON too."""
    import uuid

    from tests.agents.test_e2e_agents import E2E_REDIS_URL
    from tests.agents.test_e2e_scaled import delete_unacked, scaled_env
    from tests.conftest import delete_redis_prefix, require_redis

    require_redis()
    prefix = f"wmjson-{uuid.uuid4().hex[:12]}"
    env = {**scaled_env(shared_database, prefix), "WINGMAN_LOG_FORMAT": "json"}
    gw = None
    try:
        gw = gateway_factory(env, name="gw")
        worker = worker_factory(env, name="jsonworker")
        async with connected(gw) as c:
            ack, final, _ = await run_agent(c, {"message": "in the worker"})
        assert final["status"] == "ok"
        worker.stop()
        records = json_lines(worker.log())
        assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
        started = [r for r in records if r["message"] == f"run {ack['runId']} started (agent main)"]
        assert len(started) == 1 and started[0]["runId"] == ack["runId"], records
        assert started[0]["sessionKey"] == "agent:main:main"
    finally:
        if gw is not None:  # before its Redis keys go
            gw.stop()
        delete_redis_prefix(prefix, E2E_REDIS_URL)
        delete_unacked(env["WINGMAN_CELERY_QUEUE"])
