"""End to end: an accepted delivery is never lost. SIGKILL of the gateway right after its
202, before the run could run:

- embedded (the run executes in the gateway that died): after the restart the run is ended
  with a recorded error (``EXECUTOR_LOST``), the thread holds the user message, the log the
  202 with its run;
- scaled (Celery executor, no worker yet when the gateway dies): once a worker and the
  gateway are back, the run executes and the thread holds the answer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from tests.agents import test_e2e_agents
from tests.agents.e2e_runs import LOST_SECONDS, SLOW_MAIN, run_row, stream_text
from tests.agents.test_e2e_agents import E2E_REDIS_URL, RUN_TIMEOUT, write_agents_config
from tests.agents.test_e2e_lost_runs import api_run
from tests.agents.test_e2e_scaled import delete_unacked, executed_by, scaled_env
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import connected, wait_until
from tests.webhooks.e2e import create_webhook, deliver

pytestmark = pytest.mark.e2e

shared_database = test_e2e_agents.shared_database  # a fixture: a fresh PostgreSQL database


def _delivery_rows(state: Path) -> list[tuple]:
    with sqlite3.connect(state / "wingman.sqlite3") as db:
        return db.execute("SELECT status, run_id FROM webhooks_delivery ORDER BY id").fetchall()


async def test_embedded_sigkill_after_the_202_ends_the_run_with_an_error(
    gateway_factory, tmp_path: Path
):
    state = tmp_path / "state"
    write_agents_config(state, SLOW_MAIN)
    env = {"WINGMAN_EXECUTOR_LOST_SECONDS": str(LOST_SECONDS)}
    before = gateway_factory(env, name="before", state_dir=state)
    secret = create_webhook(before, name="Alerts")
    response = await asyncio.to_thread(deliver, before, "alerts", {"prompt": "/stream 200"}, secret)
    before.kill()
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    # committed before the 202: the delivery, its run and the user message
    assert _delivery_rows(state) == [(202, run_id)]

    after = gateway_factory(env, name="after", state_dir=state)

    async def ended() -> str | None:
        status = (await asyncio.to_thread(api_run, after, run_id))["status"]
        return None if status in ("queued", "running") else status

    assert (
        await wait_until(ended, timeout=LOST_SECONDS + 5, interval=0.2, what="run ended") == "error"
    )
    stored = await asyncio.to_thread(api_run, after, run_id)
    assert f"pid {before.pid}" in stored["error"], stored
    async with connected(after, name="client") as c:
        history = await c.ok("chat.history", {"sessionKey": "agent:main:webhook:alerts"})
    assert [(m["role"], m["content"]) for m in history["messages"]] == [("user", "/stream 200")]


@pytest.mark.redis
@pytest.mark.postgres
async def test_scaled_sigkill_after_the_202_the_run_happens_after_the_restart(
    gateway_factory, worker_factory, shared_database: str, tmp_path: Path
):
    require_redis()
    prefix = f"wmdurable-{uuid.uuid4().hex[:12]}"
    env = scaled_env(shared_database, prefix)
    state = tmp_path / "A"
    write_agents_config(state, [{"id": "main", "default": True, "model": "wingman:echo"}])
    processes = []
    try:
        before = gateway_factory(env, name="before", state_dir=state)
        processes.append(before)
        secret = create_webhook(before, name="Forms")
        response = await asyncio.to_thread(
            deliver, before, "forms", {"prompt": "/stream 4"}, secret
        )
        before.kill()  # no worker exists yet: the run cannot have started
        assert response.status_code == 202, response.text
        run_id = response.json()["runId"]
        assert run_row(shared_database, run_id)["status"] == "queued"

        after = gateway_factory(env, name="after", state_dir=state)
        worker = worker_factory(env, name="worker1")
        processes += [after, worker]

        def status() -> str | None:
            value = run_row(shared_database, run_id)["status"]
            return None if value in ("queued", "running") else value

        timeout = LOST_SECONDS * 2 + RUN_TIMEOUT
        assert (
            await wait_until(
                lambda: asyncio.to_thread(status), timeout=timeout, interval=0.3, what="run ended"
            )
            == "ok"
        )
        executed_by(run_row(shared_database, run_id), worker)
        async with connected(after, name="client") as c:
            history = await c.ok("chat.history", {"sessionKey": "agent:main:webhook:forms"})
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "/stream 4"),
            ("assistant", stream_text(4)),
        ]
    finally:
        for process in reversed(processes):
            process.stop()
        delete_redis_prefix(prefix, E2E_REDIS_URL)
        delete_unacked(env["WINGMAN_CELERY_QUEUE"])
