"""End to end, the scaled setup: two gateway processes and a real Celery worker on Redis and
one PostgreSQL database. Runs are accepted by a gateway and executed in the worker
(``WINGMAN_RUN_EXECUTOR=celery``, the default with ``REDIS_URL``); their events reach every
gateway through the channel layer.

- a run started on gateway A executes in the worker (its owner in the database), and a
  subscriber on gateway B sees every event in order; ``agent.wait``, ``agent.cancel`` and a
  retried idempotency key work from B; two runs of one session never execute at once;
- SIGKILL of gateway A mid-run: the run completes in the worker, B has its answer;
- SIGKILL of the worker mid-run: the run ends ``EXECUTOR_LOST`` within
  ``WINGMAN_EXECUTOR_LOST_SECONDS`` and the session takes a new run (a new worker runs it).

Each test has its own database, Redis prefixes and Celery queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agents import test_e2e_agents
from tests.agents.e2e_runs import (
    LOST_SECONDS,
    SLOW_MAIN,
    check_lost,
    count_runs,
    finals,
    first_text,
    new_session,
    run_row,
    start_run,
    stream_text,
)
from tests.agents.test_api_e2e import sse_events
from tests.agents.test_e2e_agents import (
    E2E_REDIS_URL,
    RUN_TIMEOUT,
    TERMINAL,
    agent_events,
    check_events,
    events_until_terminal,
    write_agents_config,
)
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    WorkerFactory,
    WorkerProcess,
    connected,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

shared_database = test_e2e_agents.shared_database  # a fixture: a fresh PostgreSQL database


@dataclass
class Scaled:
    a: GatewayProcess
    b: GatewayProcess
    worker: WorkerProcess
    #: Their environment (to start another worker).
    env: dict[str, str]
    database: str
    #: Stopped before the test's Redis keys are deleted (a test adds the ones it starts).
    processes: list[GatewayProcess]


def scaled_env(database: str, prefix: str) -> dict[str, str]:
    """A cluster's environment: Redis (unique prefixes and Celery queue), one database; no
    WINGMAN_RUN_EXECUTOR: with REDIS_URL the default is the Celery worker."""
    return {
        "REDIS_URL": E2E_REDIS_URL,
        "WINGMAN_CHANNEL_PREFIX": f"{prefix}-ch",
        "WINGMAN_CACHE_PREFIX": f"{prefix}-cache",
        "WINGMAN_CELERY_QUEUE": f"{prefix}-runs",
        "DATABASE_URL": database,
        "WINGMAN_EXECUTOR_LOST_SECONDS": str(LOST_SECONDS),
    }


def delete_unacked(queue: str, url: str = E2E_REDIS_URL) -> None:
    """Forget the Celery messages a killed worker left unacknowledged on ``queue`` (kombu
    keeps them in two server-wide keys, to deliver them again an hour later)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for tag, raw in client.hgetall("unacked").items():
            if json.loads(raw)[-1] == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


@contextlib.contextmanager
def scaled_cluster(
    gateway_factory: GatewayFactory,
    worker_factory: WorkerFactory,
    database: str,
    tmp_path: Path,
    *,
    prefix: str,
    agents: list[dict[str, Any]],
    extra_env: dict[str, str] | None = None,
) -> Iterator[Scaled]:
    """Gateways A and B (with ``agents``) and one worker on one Redis (a unique key prefix
    from ``prefix``) and ``database``; ``extra_env`` adds to their environment."""
    require_redis()
    prefix = f"{prefix}-{uuid.uuid4().hex[:12]}"
    env = scaled_env(database, prefix) | (extra_env or {})
    for name in ("A", "B"):
        write_agents_config(tmp_path / name, agents)
    processes: list[GatewayProcess] = []
    try:
        a = gateway_factory(env, name="A", state_dir=tmp_path / "A")  # migrates the database
        processes.append(a)
        with ThreadPoolExecutor(2) as pool:
            b = pool.submit(gateway_factory, env, name="B", state_dir=tmp_path / "B")
            worker = pool.submit(worker_factory, env, name="worker1")
        cluster = Scaled(a, b.result(), worker.result(), env, database, processes)
        processes += [cluster.b, cluster.worker]
        yield cluster
    finally:
        for process in reversed(processes):  # first: they write to Redis as they stop
            process.stop()
        delete_redis_prefix(prefix, E2E_REDIS_URL)
        delete_unacked(env["WINGMAN_CELERY_QUEUE"])


@pytest.fixture
def scaled(
    gateway_factory: GatewayFactory,
    worker_factory: WorkerFactory,
    shared_database: str,
    tmp_path: Path,
) -> Iterator[Scaled]:
    """Gateways A and B and one worker; the default agent ``main`` uses the slow offline
    model (50 ms a token), so a run can be caught mid-way."""
    with scaled_cluster(
        gateway_factory,
        worker_factory,
        shared_database,
        tmp_path,
        prefix="wmscaled",
        agents=SLOW_MAIN,
    ) as cluster:
        yield cluster


def executed_by(row: dict[str, Any], worker: WorkerProcess) -> None:
    assert row["executor"] == "celery", row
    assert (row["owner"], row["owner_pid"]) == (worker.seat, worker.pid), (
        f"run {row['id']} was executed by {row['owner']} pid {row['owner_pid']}, "
        f"not by the worker {worker.seat} pid {worker.pid}"
    )


def follow_sse(gw: GatewayProcess, run_id: str, into: list[tuple[float, dict]]) -> None:
    """Follow a run's event stream to its end: (monotonic time, event) into ``into``."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        httpx.Client(base_url=gw.http_url, headers=auth, timeout=60) as api,
        api.stream("GET", f"/api/runs/{run_id}/events") as stream,
    ):
        for _, data in sse_events(stream):
            into.append((time.monotonic(), data))


# --------------------------------------------------------------------------------------
async def test_runs_execute_in_the_worker_and_every_gateway_follows_them(scaled: Scaled) -> None:
    async with (
        connected(scaled.a, name="client@A") as a,
        connected(scaled.b, name="watcher@B") as b,
    ):
        # two runs of one session, sent together: the worker (4 threads) takes both tasks
        # at once, and the database gives the session to one run at a time
        key = await new_session(a)
        rid1, ack1 = await start_run(a, {"message": "/stream 10", "sessionKey": key})
        rid2, ack2 = await start_run(a, {"message": "/stream 5", "sessionKey": key})
        ended = await finals(a, [rid1, rid2])
        assert [final["status"] for final in ended.values()] == ["ok", "ok"], ended
        first, second = (
            run_row(scaled.database, ack1["runId"]),
            run_row(scaled.database, ack2["runId"]),
        )
        executed_by(first, scaled.worker)
        executed_by(second, scaled.worker)
        assert second["started_at"] >= first["ended_at"], (first, second)
        # ... and A saw the second start after the first ended (the user messages were both
        # stored when the runs were accepted; the answers follow in the runs' order)
        order = [
            (f["payload"]["runId"], f["payload"]["type"])
            for f in a.received
            if f.get("event") == "agent" and f["payload"]["type"] in ("agent-start", *TERMINAL)
        ]
        assert order == [
            (ack1["runId"], "agent-start"),
            (ack1["runId"], "agent-complete"),
            (ack2["runId"], "agent-start"),
            (ack2["runId"], "agent-complete"),
        ], order
        history = await b.ok("chat.history", {"sessionKey": key})
        assert [(m["role"], m["content"], m["runId"]) for m in history["messages"]] == [
            ("user", "/stream 10", ack1["runId"]),
            ("user", "/stream 5", ack2["runId"]),
            ("assistant", stream_text(10), ack1["runId"]),
            ("assistant", stream_text(5), ack2["runId"]),
        ]

        # a run started on A, followed and waited for on B; its idempotency key retried on
        # B (a client reconnecting there) while it runs: the same run, no second one
        assert (await b.ok("sessions.subscribe", {"sessionKey": key}))["subscribed"] is True
        params = {"message": "/stream 20", "sessionKey": key, "idempotencyKey": f"k-{uuid.uuid4()}"}
        rid, ack = await start_run(a, params)
        async with connected(scaled.b, name="retry@B") as retry:
            rid_again, again = await start_run(retry, params)
            assert (again["runId"], again["duplicate"]) == (ack["runId"], True), again
            waited = await b.ok(
                "agent.wait", {"runId": ack["runId"], "timeoutMs": 20_000}, timeout=RUN_TIMEOUT
            )
            assert waited["status"] == "ok", waited
            final = (await a.response(rid, timeout=RUN_TIMEOUT))["payload"]
            assert final["status"] == "ok" and final["result"]["text"] == stream_text(20), final
            assert (await retry.response(rid_again, timeout=RUN_TIMEOUT))["payload"] == final
        assert count_runs(scaled.database, idempotency_key=params["idempotencyKey"]) == 1
        on_a = agent_events(a.backlog, ack["runId"])
        check_events(on_a, run_id=ack["runId"], terminal="agent-complete")
        on_b = await events_until_terminal(b, ack["runId"])
        check_events(on_b, run_id=ack["runId"], terminal="agent-complete")
        assert on_b == on_a, "B must see exactly the events A saw"
        assert "".join(e.get("text", "") for e in on_b) == stream_text(20)
        executed_by(run_row(scaled.database, ack["runId"]), scaled.worker)

        # a long run started on A, cancelled from B while the worker streams it
        rid, ack = await start_run(a, {"message": "/stream 200", "sessionKey": key})
        await first_text(b, ack["runId"])
        cancel = await b.ok("agent.cancel", {"runId": ack["runId"]})
        assert (cancel["runId"], cancel["cancelled"]) == (ack["runId"], True), cancel
        final = (await a.response(rid, timeout=RUN_TIMEOUT))["payload"]
        assert final["status"] == "cancelled", final
        on_b = await events_until_terminal(b, ack["runId"])
        check_events(on_b, run_id=ack["runId"], terminal="agent-cancelled")
        partial = on_b[-1]["partialText"]
        assert partial and stream_text(200).startswith(partial) and partial != stream_text(200)
        waited = await b.ok("agent.wait", {"runId": ack["runId"], "timeoutMs": 5000})
        assert waited["status"] == "cancelled", waited
        history = await b.ok("chat.history", {"sessionKey": key})
        assert history["messages"][-1]["content"] == partial, "the partial answer is kept"
        assert run_row(scaled.database, ack["runId"])["status"] == "cancelled"

        # chat.abort on B: the running run and the one queued behind it, both in the worker
        started = [await start_run(a, {"message": "/stream 200", "sessionKey": key}) for _ in "12"]
        await first_text(b, started[0][1]["runId"])
        aborted = await b.ok("chat.abort", {"sessionKey": key})
        assert sorted(aborted["aborted"]) == sorted(ack["runId"] for _, ack in started), aborted
        ended = await finals(a, [rid for rid, _ in started])
        assert [final["status"] for final in ended.values()] == ["cancelled"] * 2, ended
        for _, ack in started:
            ends = [
                e for e in await events_until_terminal(b, ack["runId"]) if e["type"] in TERMINAL
            ]
            assert [e["type"] for e in ends] == ["agent-cancelled"], ends
        assert count_runs(scaled.database, status="running") == 0


async def test_a_gateway_killed_mid_run_does_not_lose_the_run(scaled: Scaled) -> None:
    """SIGKILL of the gateway that accepted the run: the worker finishes it, and the
    other gateway has its answer (live, in ``chat.history`` and from ``agent.wait``)."""
    async with (
        connected(scaled.b, name="watcher@B") as b,
        connected(scaled.b, name="waiter@B") as w,
    ):
        async with connected(scaled.a, name="client@A") as a:
            key = await new_session(a)
            assert (await b.ok("sessions.subscribe", {"sessionKey": key}))["subscribed"]
            _, ack = await start_run(a, {"message": "/stream 60", "sessionKey": key})
            await first_text(b, ack["runId"])
            waiting = w.request_frame("agent.wait", {"runId": ack["runId"], "timeoutMs": 20_000})
            await w.send(waiting)
            scaled.a.kill()
        events = await events_until_terminal(b, ack["runId"])
        check_events(events, run_id=ack["runId"], terminal="agent-complete")
        assert events[-1]["result"]["text"] == stream_text(60)
        waited = (await w.response(waiting["id"], timeout=RUN_TIMEOUT))["payload"]
        assert waited["status"] == "ok", waited
        history = await b.ok("chat.history", {"sessionKey": key})
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "/stream 60"),
            ("assistant", stream_text(60)),
        ]
        executed_by(run_row(scaled.database, ack["runId"]), scaled.worker)
    # a client reconnecting to another gateway process gets it too
    async with connected(scaled.b, name="reconnected@B") as again:
        history = await again.ok("chat.history", {"sessionKey": key})
        assert history["messages"][-1]["content"] == stream_text(60)


async def test_a_worker_killed_mid_run_ends_it_executor_lost_and_frees_the_session(
    scaled: Scaled, worker_factory: WorkerFactory
) -> None:
    async with (
        connected(scaled.a, name="client@A") as a,
        connected(scaled.b, name="watcher@B") as b,
    ):
        key = await new_session(a)
        assert (await b.ok("sessions.subscribe", {"sessionKey": key}))["subscribed"]
        rid, ack = await start_run(a, {"message": "/stream 200", "sessionKey": key})
        await first_text(b, ack["runId"])
        executed_by(run_row(scaled.database, ack["runId"]), scaled.worker)
        # ... and followed on B's REST API too (GET /api/runs/<id>/events, after its replay)
        sse: list[tuple[float, dict[str, Any]]] = []
        following = asyncio.create_task(asyncio.to_thread(follow_sse, scaled.b, ack["runId"], sse))
        await wait_until(lambda: asyncio.sleep(0, len(sse) >= 2), timeout=10, what="replay")
        scaled.worker.kill()
        killed = time.monotonic()

        # nobody asks: the gateways' sweepers find the dead worker and end its run
        events = await events_until_terminal(b, ack["runId"], timeout=LOST_SECONDS + 10)
        found = time.monotonic() - killed
        check_lost(events, run_id=ack["runId"])
        assert f"pid {scaled.worker.pid}" in events[-1]["error"], events[-1]
        assert found <= LOST_SECONDS, f"the lost run was ended {found:.1f} s after the kill"
        final = (await a.response(rid, timeout=RUN_TIMEOUT))["payload"]
        assert (final["status"], final["error"]["code"]) == ("error", "EXECUTOR_LOST"), final
        waited = await b.ok("agent.wait", {"runId": ack["runId"], "timeoutMs": 5000})
        assert (waited["status"], waited["error"]["code"]) == ("error", "EXECUTOR_LOST"), waited
        row = run_row(scaled.database, ack["runId"])
        assert (row["status"], row["error_code"]) == ("error", "EXECUTOR_LOST"), row
        await asyncio.wait_for(following, timeout=30)
        at, end = sse[-1]
        assert (end["type"], end["code"]) == ("agent-error", "EXECUTOR_LOST"), sse
        assert at - killed <= LOST_SECONDS, f"the event stream ended {at - killed:.1f} s after"

        # no worker now: a new run waits unclaimed; cancelled from B, it ends at once (for
        # its requester and for a follower of its event stream)
        rid, waiting = await start_run(a, {"message": "/stream 3", "sessionKey": key})
        sse.clear()
        following = asyncio.create_task(
            asyncio.to_thread(follow_sse, scaled.b, waiting["runId"], sse)
        )
        await asyncio.sleep(0.5)  # the follower is listening (its replay is empty: queued)
        assert run_row(scaled.database, waiting["runId"])["owner"] == ""
        cancelled_at = time.monotonic()
        cancel = await b.ok("agent.cancel", {"runId": waiting["runId"]})
        assert cancel["cancelled"] is True, cancel
        final = (await a.response(rid, timeout=RUN_TIMEOUT))["payload"]
        assert final["status"] == "cancelled", final
        await asyncio.wait_for(following, timeout=30)
        assert [e["type"] for _, e in sse] == ["agent-cancelled"], sse
        assert sse[-1][0] - cancelled_at < 5, "the event stream missed the cancel"

        # the session takes a new run: it waits for a worker, and a new worker runs it
        rid, ack2 = await start_run(a, {"message": "/stream 3", "sessionKey": key})
        worker2 = await asyncio.to_thread(worker_factory, scaled.env, name="worker2")
        scaled.processes.append(worker2)
        final = (await a.response(rid, timeout=RUN_TIMEOUT))["payload"]
        assert final["status"] == "ok" and final["result"]["text"] == stream_text(3), final
        executed_by(run_row(scaled.database, ack2["runId"]), worker2)
        history = await b.ok("chat.history", {"sessionKey": key})
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "/stream 200"),
            ("user", "/stream 3"),
            ("user", "/stream 3"),
            ("assistant", stream_text(3)),
        ]
