"""End to end: routines fire by themselves and their runs stream to WebSocket clients.

- embedded default: one ``wingman gateway run`` (SQLite, no broker, no other process)
  imports ``routines.json`` from its state dir on start, runs beat's scheduler itself, and
  executes the runs; a subscribed client sees the ``routine`` events and the run's stream;
- scaled: a gateway, a separate ``celery -A wingman worker`` and one ``celery -A wingman
  beat`` on the real Redis broker and PostgreSQL; the client on the gateway sees the run
  the worker executes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.agents.test_e2e_agents import E2E_REDIS_URL, TERMINAL, write_agents_config
from tests.agents.test_e2e_scaled import delete_unacked, scaled_env
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import GatewayProcess, WsClient, connected
from tests.routines.processes import BeatProcess

pytestmark = pytest.mark.e2e

shared_database = pytest.importorskip("tests.agents.test_e2e_agents").shared_database
ROUTINE_ID = "news"
SESSION = f"agent:main:routine:{ROUTINE_ID}"
AGENTS = [{"id": "main", "default": True, "model": "wingman:echo"}]


def write_routines(state_dir: Path, routines: list[dict[str, Any]]) -> None:
    (state_dir / "routines.json").write_text(json.dumps(routines))


def seed_routines(every: int) -> list[dict[str, Any]]:
    """Seed 001's shape; the first runs every few seconds (``every`` in place of ``cron``)."""
    created = datetime.now(UTC).isoformat()
    return [
        {
            "id": ROUTINE_ID,
            "name": "News",
            "agentId": "main",
            "every": every,
            "prompt": "/stream 12",
            "enabled": True,
            "createdAt": created,
        },
        {
            "id": "yearly",
            "name": "New year",
            "agentId": "main",
            "cron": "0 0 1 1 *",
            "prompt": "happy new year",
            "enabled": True,
            "createdAt": "2026-01-01T00:00:00+00:00",
            "lastRunAt": "2026-01-01T00:00:05+00:00",
        },
    ]


async def watch_one_run(client: WsClient, timeout: float = 30.0) -> tuple[dict, list[dict], dict]:
    """Subscribe to the routine's thread; return the first run that starts afterwards: its
    ``routine`` started event, its ``agent`` events (through the terminal one) and its
    ``routine`` finished event."""
    await client.ok("subscribe", {"events": ["routine"]})
    await client.ok("sessions.subscribe", {"sessionKey": SESSION})
    client.clear_backlog()
    started = await client.next_event(
        "routine", where=lambda f: f["payload"]["action"] == "started", timeout=timeout
    )
    run_id = started["payload"]["runId"]
    events: list[dict] = []
    while not events or events[-1].get("type") not in TERMINAL:
        frame = await client.next_event(
            "agent", where=lambda f: f["payload"].get("runId") == run_id, timeout=15
        )
        events.append(frame["payload"])
    finished = await client.next_event(
        "routine",
        where=lambda f: (
            f["payload"]["action"] == "finished" and f["payload"].get("runId") == run_id
        ),
        timeout=15,
    )
    return started["payload"], events, finished["payload"]


def check_run(started: dict, events: list[dict], finished: dict) -> None:
    assert started["routineId"] == ROUTINE_ID and started["status"] == "running"
    assert started["sessionKey"] == SESSION and started["nextRunAtMs"] > started["ts"] - 1000
    types = [e.get("type") for e in events]
    assert types[-1] == "agent-complete", types
    assert sum(1 for t in types if t in TERMINAL) == 1
    deltas = [e for e in events if e.get("type") not in TERMINAL]
    assert len(deltas) >= 3, types  # it streamed, not one lump
    assert finished["status"] == "ok" and finished["durationMs"] >= 0


def thread_rows(db_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT m.role, m.content FROM agents_message m JOIN agents_session s "
            "ON s.id = m.session_id WHERE s.key = ? ORDER BY m.position",
            (SESSION,),
        ).fetchall()


async def test_embedded_gateway_fires_routines_itself(gateway_factory, tmp_path):
    state = tmp_path / "gw"
    write_agents_config(state, AGENTS)
    write_routines(state, seed_routines(every=3))
    gw: GatewayProcess = gateway_factory({}, name="gw", state_dir=state)
    assert "routines: 2 created" in gw.log()
    async with connected(gw) as client:
        started, events, finished = await watch_one_run(client)
    check_run(started, events, finished)
    rows = thread_rows(state / "wingman.sqlite3")
    assert (len(rows) >= 2 and len(rows) % 2 == 0) or rows[-1][0] == "user"
    assert rows[0] == ("user", "/stream 12") and rows[1][0] == "assistant"
    with sqlite3.connect(f"file:{state / 'wingman.sqlite3'}?mode=ro", uri=True) as conn:
        yearly = conn.execute(
            "SELECT cron, last_run_at, enabled FROM routines_routine WHERE id = 'yearly'"
        ).fetchone()
    assert yearly[0] == "0 0 1 1 *" and yearly[1].startswith("2026-01-01") and yearly[2] == 1


@pytest.mark.redis
@pytest.mark.postgres
async def test_scaled_worker_and_one_beat(
    gateway_factory, worker_factory, shared_database, tmp_path
):
    require_redis()
    prefix = f"wmroutines-{uuid.uuid4().hex[:12]}"
    env = scaled_env(shared_database, prefix)
    write_agents_config(tmp_path / "gw", AGENTS)
    write_routines(tmp_path / "gw", seed_routines(every=3))
    beat: BeatProcess | None = None
    try:
        gw = gateway_factory(env, name="gw", state_dir=tmp_path / "gw")  # migrates, imports
        assert "routines: 2 created" in gw.log()
        worker = worker_factory(env, name="worker1")
        beat = BeatProcess(tmp_path / "beat", env=env, name="beat").start()
        async with connected(gw) as client:
            started, events, finished = await watch_one_run(client)
        check_run(started, events, finished)
        from tests.agents.e2e_runs import run_row

        row = run_row(shared_database, started["runId"])
        assert row["source"] == "routine" and row["executor"] == "local"
        assert row["owner"] == worker.seat  # the worker executed it
        assert "Sending due task routine:news (routines.fire)" in beat.log()
    finally:
        if beat is not None:
            beat.stop()
        delete_redis_prefix(prefix, E2E_REDIS_URL)
        delete_unacked(env["WINGMAN_CELERY_QUEUE"])


def fire_records(database: str, routine_id: str) -> list[tuple[datetime, str, str | None]]:
    """(scheduled time, status, run id) of a routine's fires, read from PostgreSQL."""
    import psycopg

    with psycopg.connect(database, connect_timeout=5) as conn:
        return conn.execute(
            "SELECT scheduled_at, status, run_id FROM routines_routinerun "
            "WHERE routine_id = %s ORDER BY scheduled_at",
            (routine_id,),
        ).fetchall()


def unrecorded_runs(database: str, session_key: str) -> int:
    """Runs in the session that no fire record has (a time run twice would make one: a
    record gets its run in the transaction that accepts the run)."""
    import psycopg

    with psycopg.connect(database, connect_timeout=5) as conn:
        return conn.execute(
            "SELECT count(*) FROM agents_run r JOIN agents_session s ON s.id = r.session_id "
            "WHERE s.key = %s AND NOT EXISTS "
            "(SELECT 1 FROM routines_routinerun rr WHERE rr.run_id = r.id)",
            (session_key,),
        ).fetchone()[0]


async def test_scaled_two_beats_fire_each_time_once(
    gateway_factory, worker_factory, shared_database, tmp_path
):
    """Two beat processes both send every due time (in ``routines.fire_batch`` messages);
    the worker's lock per (routine, time) lets one of them through: one run per time."""
    require_redis()
    prefix = f"wmroutines-{uuid.uuid4().hex[:12]}"
    env = scaled_env(shared_database, prefix)
    write_agents_config(tmp_path / "gw", AGENTS)
    pulse = {**seed_routines(every=2)[0], "id": "pulse", "name": "Pulse", "prompt": "ping"}
    write_routines(tmp_path / "gw", [pulse])
    beats: list[BeatProcess] = []
    try:
        gateway_factory(env, name="gw", state_dir=tmp_path / "gw")  # migrates, imports
        worker_factory(env, name="worker1")
        for name in ("beat1", "beat2"):
            beats.append(BeatProcess(tmp_path / name, env=env, name=name).start())
        sending = "Sending due task routine:pulse (routines.fire)"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60

        def ended_ok() -> int:
            return sum(1 for r in fire_records(shared_database, "pulse") if r[1] == "ok")

        while not all(sending in beat.log() for beat in beats):  # both beats sending
            assert loop.time() < deadline, [beat.log()[-600:] for beat in beats]
            await asyncio.sleep(0.5)
        before = ended_ok()
        while ended_ok() < before + 3:  # three more times while both send each
            assert loop.time() < deadline, fire_records(shared_database, "pulse")
            await asyncio.sleep(0.5)
        records = fire_records(shared_database, "pulse")
        times = [scheduled for scheduled, _, _ in records]
        assert len(times) == len(set(times))
        runs = [run_id for _, _, run_id in records if run_id is not None]
        assert len(runs) == len(set(runs)) >= 3
        assert unrecorded_runs(shared_database, "agent:main:routine:pulse") == 0
    finally:
        for beat in beats:
            beat.stop()
        delete_redis_prefix(prefix, E2E_REDIS_URL)
        delete_unacked(env["WINGMAN_CELERY_QUEUE"])
