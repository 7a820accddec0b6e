"""The compose topology (deploy/compose.yaml) as processes (tests/ops/topology.py): the
``migrate`` service, two gateways, a Celery worker and exactly one beat on real Redis and
PostgreSQL, and nginx running deploy/nginx/wingman.conf in front of the gateways. A client
through the proxy creates a one-time routine and a webhook and runs an agent; the gateway
it is connected to is restarted mid-run; the run (executing in the worker) completes and
the client, reconnected through the proxy, reads its answer. Meanwhile the beat (which
started before the routine existed) fires the routine and the worker executes its run in
the routine's thread; a delivery through the proxy is accepted (202) and its run executes
in the worker. SSE through the proxy streams unbuffered."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.agents.e2e_runs import first_text, new_session, run_row, start_run, stream_text
from tests.agents.test_api_e2e import sse_events
from tests.agents.test_e2e_agents import E2E_REDIS_URL, RUN_TIMEOUT
from tests.agents.test_e2e_scaled import delete_unacked, scaled_env
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    WorkerFactory,
    WsClient,
    wait_until,
    ws_client,
)
from tests.ops.topology import Nginx, Topology, connections_of, start_topology
from tests.webhooks.e2e import deliver

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The routine's and the delivery's prompts (the offline model streams n tokens).
ROUTINE_TOKENS, HOOK_TOKENS = 8, 6


@pytest.fixture
def cleanup() -> Iterator[list]:
    stops: list = []
    yield stops
    for stop in reversed(stops):
        stop()


async def create_routine(c: WsClient, due_in: float = 2.0) -> tuple[str, datetime]:
    """A one-time routine of the default agent due ``due_in`` seconds from now (created
    after the beat started: the beat must notice it); its id and due time."""
    at = datetime.now(UTC) + timedelta(seconds=due_in)
    routine = await c.ok(
        "routines.create",
        {"name": "Soon", "agentId": "main", "at": at.isoformat(),
         "prompt": f"/stream {ROUTINE_TOKENS}"},
    )  # fmt: skip
    assert routine["enabled"] is True and routine["scheduleKind"] == "at", routine
    return routine["id"], at


async def run_and_restart_holder(c: WsClient, topo: Topology) -> tuple[str, str, GatewayProcess]:
    """Start a long run; SIGTERM the gateway the client reached through the proxy mid-run
    (it drains and closes 1012). (session key, run id, that gateway)."""
    key = await new_session(c)
    _, ack = await start_run(c, {"message": "/stream 60", "sessionKey": key})
    await first_text(c, ack["runId"])
    (holder,) = [g for g in topo.gateways.values() if connections_of(g) == 1]
    holder.signal()  # SIGTERM: drain, close 1012
    code, _ = await c.expect_close(timeout=10)
    assert code == 1012, code
    return key, ack["runId"], holder


async def last_message(c: WsClient, session_key: str) -> tuple[str, str]:
    history = await c.ok("chat.history", {"sessionKey": session_key})
    last = history["messages"][-1]
    return last["role"], last["content"]


async def check_routine_fired(
    c: WsClient, topo: Topology, database: str, routine_id: str, at: datetime
) -> None:
    """The beat fired the routine once, for its time; the worker executed the run in the
    routine's thread; the fire's record and the run are stored as ended ok."""

    async def ended() -> list[dict] | None:
        runs = (await c.ok("routines.runs", {"id": routine_id}))["runs"]
        return runs if runs and runs[0]["status"] != "running" else None

    try:
        fired = await wait_until(ended, timeout=RUN_TIMEOUT, interval=0.2, what="routine fired")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nbeat log:\n{topo.beat.log_tail()}") from None
    sent = f"Sending due task routine:{routine_id} (routines.fire)"
    assert sent in topo.beat.log(), topo.beat.log_tail()
    (record,) = fired
    assert (record["trigger"], record["status"]) == ("schedule", "ok"), record
    assert record["scheduledAt"] == int(at.timestamp() * 1000), (record, at)
    assert record["sessionKey"] == f"agent:main:routine:{routine_id}", record
    row = run_row(database, record["runId"])
    assert (row["status"], row["source"], row["owner"]) == ("ok", "routine", topo.worker.seat)
    assert row["result"] == stream_text(ROUTINE_TOKENS)
    assert await last_message(c, record["sessionKey"]) == (
        "assistant",
        stream_text(ROUTINE_TOKENS),
    )


async def check_webhook(c: WsClient, topo: Topology, database: str, secret: str) -> None:
    """A delivery through the proxy: 202 at once; its run executes in the worker and ends
    ok in the webhook's thread; the delivery log holds the 202 and the run."""
    payload = {"prompt": f"/stream {HOOK_TOKENS}"}
    res = await asyncio.to_thread(deliver, topo.proxy, "ci", payload, secret)
    assert res.status_code == 202, res.text
    run_id, key = res.json()["runId"], res.json()["sessionKey"]
    waited = await c.ok("agent.wait", {"runId": run_id, "timeoutMs": 20_000}, timeout=25)
    assert waited["status"] == "ok", waited
    row = run_row(database, run_id)
    assert (row["status"], row["source"], row["executor"]) == ("ok", "webhook", "celery")
    assert row["owner_pid"] == topo.worker.pid, row
    assert await last_message(c, key) == ("assistant", stream_text(HOOK_TOKENS))
    with httpx.Client(base_url=topo.proxy.http_url, headers=AUTH, timeout=10) as api:
        log = api.get("/api/webhooks/ci/deliveries").json()["results"]
    assert [(d["status"], d["accepted"], d["runId"]) for d in log] == [(202, True, run_id)]


def sse_through_proxy(proxy: Nginx, session_key: str) -> None:
    """A REST run's SSE stream through the proxy arrives as it is produced."""
    with httpx.Client(base_url=proxy.http_url, headers=AUTH, timeout=30) as api:
        created = api.post("/api/runs", json={"message": "/stream 30", "sessionKey": session_key})
        assert created.status_code in (200, 201, 202), created.text
        sse_id = created.json()["runId"]
        seen: list[tuple[float, str]] = []

        def follow() -> None:
            with api.stream("GET", f"/api/runs/{sse_id}/events") as stream:
                for name, _ in sse_events(stream):
                    seen.append((time.monotonic(), name))

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        reader.join(RUN_TIMEOUT)
    assert not reader.is_alive() and seen, seen
    assert seen[0][1] == "agent-start" and seen[-1][1] == "agent-complete", seen
    assert seen[-1][0] - seen[0][0] > 0.8, "events came through the proxy all at once"


async def test_compose_topology_as_processes(
    gateway_factory: GatewayFactory,
    worker_factory: WorkerFactory,
    empty_database: str,
    tmp_path,
    cleanup: list,
) -> None:
    require_redis()
    prefix = f"wmtopo-{uuid.uuid4().hex[:12]}"
    env = scaled_env(empty_database, prefix)
    cleanup.append(lambda: delete_unacked(env["WINGMAN_CELERY_QUEUE"]))
    cleanup.append(lambda: delete_redis_prefix(prefix, E2E_REDIS_URL))
    topo = await start_topology(gateway_factory, worker_factory, env, tmp_path, cleanup)

    async with ws_client(topo.proxy.ws, name="client-1") as c:
        await c.handshake()
        routine_id, due = await create_routine(c)
        hook = await c.ok("webhooks.create", {"id": "ci", "name": "CI", "agentId": "main"})
        key, run_id, holder = await run_and_restart_holder(c, topo)
    assert holder.wait(15) == 0, holder.log_tail()

    # reconnect through the proxy (it now reaches the other gateway); the run goes on
    async with ws_client(topo.proxy.ws, name="client-2") as c:
        await c.handshake()
        waited = await c.ok("agent.wait", {"runId": run_id, "timeoutMs": 20_000}, timeout=25)
        assert waited["status"] == "ok", waited
        assert await last_message(c, key) == ("assistant", stream_text(60))
        await check_routine_fired(c, topo, empty_database, routine_id, due)
        await check_webhook(c, topo, empty_database, hook["secret"])
    row = run_row(empty_database, run_id)
    assert (row["status"], row["executor"], row["owner_pid"]) == ("ok", "celery", topo.worker.pid)

    # the restarted gateway serves again; both serve through the proxy (round robin)
    restarted = gateway_factory(
        {**env, "WINGMAN_GATEWAY_NAME": holder.name},
        name=f"{holder.name}-again",
        state_dir=holder.state_dir,
    )
    cleanup.append(restarted.stop)
    assert httpx.get(f"{restarted.http_url}/health", timeout=5).json()["status"] == "healthy"
    for _ in range(4):
        health = httpx.get(f"{topo.proxy.http_url}/health", timeout=5).json()
        assert health["status"] == "healthy"
    await asyncio.to_thread(sse_through_proxy, topo.proxy, key)
    assert topo.beat.running and topo.worker.running
