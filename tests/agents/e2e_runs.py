"""Helpers of the end-to-end run tests (test_e2e_scaled.py, test_e2e_lost_runs.py): start
and follow runs through a WsClient, read a run straight from PostgreSQL."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.agents.test_e2e_agents import RUN_TIMEOUT, TERMINAL
from tests.gateway.gateway_process import WsClient, is_event

#: Small, so a lost run is found fast (the sweepers run every LOST/6 s).
LOST_SECONDS = 6
#: The default agent on the slow offline model (50 ms a token): a run is caught mid-way.
SLOW_MAIN = [{"id": "main", "default": True, "model": "wingman:slow"}]


def run_row(database: str, run_id: str) -> dict[str, Any]:
    """The run as stored (read straight from PostgreSQL)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database, row_factory=dict_row, connect_timeout=5) as conn:
        row = conn.execute("SELECT * FROM agents_run WHERE id = %s", (run_id,)).fetchone()
    assert row is not None, f"no run {run_id} in the database"
    return row


def count_runs(database: str, **where: str) -> int:
    import psycopg

    clause = " AND ".join(f"{column} = %s" for column in where) or "TRUE"
    with psycopg.connect(database, connect_timeout=5) as conn:
        sql = f"SELECT count(*) FROM agents_run WHERE {clause}"  # noqa: S608 - test columns
        return conn.execute(sql, tuple(where.values())).fetchone()[0]


async def start_run(c: WsClient, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Send ``agent``; (request id, ack payload). The final reply comes later."""
    frame = c.request_frame("agent", params)
    await c.send(frame)
    ack = await c.response(frame["id"])
    assert ack["ok"] is True and ack["payload"]["status"] == "accepted", ack
    return frame["id"], ack["payload"]


async def first_text(c: WsClient, run_id: str) -> None:
    """Until the run streamed its first token to ``c`` (it is running, mid-way)."""
    await c.next_event(
        "agent",
        where=lambda f: f["payload"].get("runId") == run_id and f["payload"].get("text"),
        timeout=RUN_TIMEOUT,
    )


async def new_session(c: WsClient) -> str:
    return (await c.ok("sessions.create", {"name": f"s-{uuid.uuid4().hex[:6]}"}))["sessionKey"]


def check_lost(events: list[dict[str, Any]], *, run_id: str) -> None:
    """The events of a run whose executor died: its own (none if it was still queued), in
    order (1..n), then one ``agent-error`` ``EXECUTOR_LOST`` published by the process that
    found it lost. That process cannot know the dead one's last ``seq``: today the event
    has none, like a finished run's terminal event rebuilt from the database."""
    *executed, end = events
    assert all(e["runId"] == run_id for e in events), events
    assert [e["seq"] for e in executed] == list(range(1, len(executed) + 1)), executed
    assert not [e for e in executed if e["type"] in TERMINAL], executed
    assert (end["type"], end["code"]) == ("agent-error", "EXECUTOR_LOST"), end
    assert end.get("seq") is None or end["seq"] > len(executed), end


def stream_text(n: int) -> str:
    return "".join(f"t{i} " for i in range(n))


async def finals(c: WsClient, request_ids: list[str], timeout: float = RUN_TIMEOUT) -> dict:
    """The final replies to several ``agent`` requests, in whatever order they come (by
    request id); events meanwhile go to the backlog."""
    got: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(request_ids):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{c.name}: finals of {set(request_ids) - set(got)} missing"
        frame = await c.recv(remaining)
        if is_event(frame):
            c.backlog.append(frame)
            continue
        assert frame.get("id") in request_ids and frame["id"] not in got, frame
        assert frame["ok"] is True, frame
        got[frame["id"]] = frame["payload"]
    return got
