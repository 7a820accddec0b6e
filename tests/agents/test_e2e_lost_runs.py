"""End to end: runs whose executing process died, and one run per session through Redis
faults. Real gateway processes, real SIGKILL, a real (throw-away) ``redis-server``.

- embedded (SQLite, no Redis): a gateway killed mid-run and restarted on its state dir ends
  the run ``EXECUTOR_LOST`` at start, and the session takes a new run;
- Redis + PostgreSQL, runs executed by the gateways (``WINGMAN_RUN_EXECUTOR=local``, so the
  accepting process is the executor that dies):
  - a gateway killed with a running and a queued run: both are ended ``EXECUTOR_LOST``
    within seconds, ``agent.cancel`` says ``cancelled: false`` and ``agent.wait`` answers
    ``error`` (not ``timeout``), and the session is usable again;
  - a Redis restarted empty while a run executes does not let the session's next run start
    before it ended; a run queued during a 3 s Redis outage waits and completes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agents import test_e2e_agents
from tests.agents.e2e_runs import (
    LOST_SECONDS,
    SLOW_MAIN,
    check_lost,
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
    events_until_terminal,
    write_agents_config,
)
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway import test_e2e_redis_outage
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    WsClient,
    connected,
    wait_until,
)
from tests.gateway.test_e2e_redis_outage import PrivateRedis

pytestmark = pytest.mark.e2e

# fixtures: a fresh PostgreSQL database, a throw-away redis-server
shared_database = test_e2e_agents.shared_database
private_redis = test_e2e_redis_outage.private_redis

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api_run(gw: GatewayProcess, run_id: str) -> dict[str, Any]:
    """``GET /api/runs/<id>``."""
    with httpx.Client(base_url=gw.http_url, headers=AUTH, timeout=10) as api:
        response = api.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()


def api_run_end(gw: GatewayProcess, run_id: str) -> dict[str, Any]:
    """The terminal event of an ended run, from ``GET /api/runs/<id>/events``."""
    with (
        httpx.Client(base_url=gw.http_url, headers=AUTH, timeout=10) as api,
        api.stream("GET", f"/api/runs/{run_id}/events") as stream,
    ):
        events = [data for _, data in sse_events(stream)]
    assert events and events[-1]["type"] in ("agent-error", "agent-complete", "agent-cancelled")
    return events[-1]


async def assert_lost(gw: GatewayProcess, c: WsClient, run_id: str, pid: int) -> None:
    """Every way to ask says the run ended EXECUTOR_LOST because process ``pid`` died."""
    waited = await c.ok("agent.wait", {"runId": run_id, "timeoutMs": 5000})
    assert (waited["status"], waited["error"]["code"]) == ("error", "EXECUTOR_LOST"), waited
    stored = await asyncio.to_thread(api_run, gw, run_id)
    assert stored["status"] == "error" and f"pid {pid}" in stored["error"], stored
    end = await asyncio.to_thread(api_run_end, gw, run_id)
    assert (end["type"], end["code"]) == ("agent-error", "EXECUTOR_LOST"), end


# --------------------------------------------------------------------------------------
# embedded
# --------------------------------------------------------------------------------------
async def test_embedded_run_of_a_killed_gateway_is_lost_after_the_restart(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    write_agents_config(state, SLOW_MAIN)
    env = {"WINGMAN_EXECUTOR_LOST_SECONDS": str(LOST_SECONDS)}
    before = gateway_factory(env, name="before", state_dir=state)
    async with connected(before, name="client") as c:
        _, ack = await start_run(c, {"message": "/stream 200"})
        await first_text(c, ack["runId"])
        before.kill()

    after = gateway_factory(env, name="after", state_dir=state)
    started = time.monotonic()

    async def ended() -> str | None:
        status = (await asyncio.to_thread(api_run, after, ack["runId"]))["status"]
        return None if status in ("queued", "running") else status

    # nobody asked yet: the restarted gateway's first sweep ended it
    status = await wait_until(ended, timeout=LOST_SECONDS, interval=0.2, what="run ended")
    assert status == "error", f"{status} {time.monotonic() - started:.1f} s after the restart"
    async with connected(after, name="client again") as c:
        await assert_lost(after, c, ack["runId"], before.pid)
        history = await c.ok("chat.history", {"sessionKey": ack["sessionKey"]})
        assert [(m["role"], m["content"]) for m in history["messages"]] == [("user", "/stream 200")]
        # the session takes a new run
        rid, again = await start_run(c, {"message": "/stream 3"})
        assert again["sessionKey"] == ack["sessionKey"]
        final = (await c.response(rid, timeout=RUN_TIMEOUT))["payload"]
        assert final["status"] == "ok" and final["result"]["text"] == stream_text(3), final


# --------------------------------------------------------------------------------------
# Redis + PostgreSQL, runs executed by the gateway that accepted them
# --------------------------------------------------------------------------------------
class Pair:
    """Gateways A and B on one Redis (unique prefixes) and one fresh database, executing
    runs themselves; the default agent uses the slow offline model."""

    def __init__(self, factory: GatewayFactory, database: str, tmp_path: Path) -> None:
        self.factory = factory
        self.tmp_path = tmp_path
        self.prefix = f"wmlost-{uuid.uuid4().hex[:12]}"
        self.env = {
            "WINGMAN_CHANNEL_PREFIX": f"{self.prefix}-ch",
            "WINGMAN_CACHE_PREFIX": f"{self.prefix}-cache",
            "DATABASE_URL": database,
            "WINGMAN_RUN_EXECUTOR": "local",
            "WINGMAN_EXECUTOR_LOST_SECONDS": str(LOST_SECONDS),
        }
        self.started: list[GatewayProcess] = []

    def start(self, redis_url: str) -> tuple[GatewayProcess, GatewayProcess]:
        self.env["REDIS_URL"] = redis_url
        for name in ("A", "B"):  # one after the other: the first one migrates
            write_agents_config(self.tmp_path / name, SLOW_MAIN)
            self.started.append(self.factory(self.env, name=name, state_dir=self.tmp_path / name))
        return self.started[0], self.started[1]

    def restart(self, gw: GatewayProcess) -> GatewayProcess:
        """Another process on ``gw``'s state dir."""
        again = self.factory(self.env, name=f"{gw.name} again", state_dir=gw.state_dir)
        self.started.append(again)
        return again

    def stop(self) -> None:
        for gw in self.started:  # first: they write to Redis as they stop
            gw.stop()
        if self.env.get("REDIS_URL") == E2E_REDIS_URL:
            delete_redis_prefix(self.prefix, E2E_REDIS_URL)


@pytest.fixture
def pair(gateway_factory: GatewayFactory, shared_database: str, tmp_path: Path) -> Iterator[Pair]:
    made = Pair(gateway_factory, shared_database, tmp_path)
    yield made
    made.stop()


@pytest.mark.redis
@pytest.mark.postgres
async def test_runs_of_a_killed_gateway_are_lost_within_seconds_and_every_call_says_so(
    pair: Pair, shared_database: str
) -> None:
    require_redis()
    gw_a, gw_b = pair.start(E2E_REDIS_URL)
    async with connected(gw_b, name="watcher@B") as b, connected(gw_b, name="waiter@B") as w:
        async with connected(gw_a, name="client@A") as a:
            s1, s2 = await new_session(a), await new_session(a)
            for key in (s1, s2):
                assert (await b.ok("sessions.subscribe", {"sessionKey": key}))["subscribed"]
            # session 1: a running run and one queued behind it; session 2: a running run
            _, run1 = await start_run(a, {"message": "/stream 200", "sessionKey": s1})
            _, run2 = await start_run(a, {"message": "/stream 3", "sessionKey": s1})
            _, run3 = await start_run(a, {"message": "/stream 200", "sessionKey": s2})
            for run in (run1, run3):
                await first_text(b, run["runId"])
            assert run_row(shared_database, run2["runId"])["status"] == "queued"
            # waiting for run 1 when its process dies
            waiting = w.request_frame("agent.wait", {"runId": run1["runId"], "timeoutMs": 30_000})
            await w.send(waiting)
            gw_a.kill()
        killed = time.monotonic()

        # asked about at once: the truth, not "cancelled" and not "timeout"
        cancel = await b.ok("agent.cancel", {"runId": run3["runId"]})
        assert cancel["cancelled"] is False, cancel
        waited = await b.ok("agent.wait", {"runId": run3["runId"], "timeoutMs": 5000})
        assert (waited["status"], waited["error"]["code"]) == ("error", "EXECUTOR_LOST"), waited
        waited = await w.response(waiting["id"], timeout=LOST_SECONDS + 10)
        assert waited["payload"]["status"] == "error", waited
        assert time.monotonic() - killed <= LOST_SECONDS, "the wait saw the death late"

        # a quick restart of A (same machine, same state dir)
        restarted = await asyncio.to_thread(pair.restart, gw_a)
        # nobody asked about the queued run 2: the sweepers ended it, and said so
        lost1 = await events_until_terminal(b, run1["runId"], timeout=LOST_SECONDS + 10)
        lost2 = await events_until_terminal(b, run2["runId"], timeout=LOST_SECONDS + 10)
        found = time.monotonic() - killed
        assert found <= LOST_SECONDS + 5, f"lost runs ended {found:.1f} s after the kill"
        check_lost(lost1, run_id=run1["runId"])
        check_lost(lost2, run_id=run2["runId"])
        assert len(lost2) == 1, "the queued run never started"
        check_lost(await events_until_terminal(b, run3["runId"]), run_id=run3["runId"])
        for run in (run1, run2, run3):
            await assert_lost(gw_b, b, run["runId"], gw_a.pid)

        # and the sessions take new runs (on either process)
        async with connected(restarted, name="client@A again") as a:
            rid, _ = await start_run(a, {"message": "/stream 3", "sessionKey": s1})
            final = (await a.response(rid, timeout=RUN_TIMEOUT))["payload"]
            assert final["status"] == "ok", final
        rid, _ = await start_run(b, {"message": "/stream 3", "sessionKey": s2})
        final = (await b.response(rid, timeout=RUN_TIMEOUT))["payload"]
        assert final["status"] == "ok", final
        history = await b.ok("chat.history", {"sessionKey": s1})
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "/stream 200"),
            ("user", "/stream 3"),
            ("user", "/stream 3"),
            ("assistant", stream_text(3)),
        ]


async def send_until_accepted(c: WsClient, params: dict[str, Any]) -> tuple[str, dict]:
    """``agent``, sent again while the gateway answers UNAVAILABLE (retryable), as a client
    does while Redis comes back; (request id, ack)."""
    deadline = time.monotonic() + 20
    while True:
        frame = c.request_frame("agent", params)
        await c.send(frame)
        ack = await c.response(frame["id"], timeout=RUN_TIMEOUT)
        if ack["ok"] or time.monotonic() > deadline or not ack["error"].get("retryable"):
            assert ack["ok"] is True, ack
            return frame["id"], ack["payload"]
        await asyncio.sleep(0.2)


async def assert_one_after_the_other(
    a: WsClient, first: tuple[str, dict], b: WsClient, second: tuple[str, dict], database: str
) -> None:
    """Both runs completed, the second started after the first ended, and the session's
    transcript has the answers in that order."""
    final1 = (await a.response(first[0], timeout=RUN_TIMEOUT))["payload"]
    final2 = (await b.response(second[0], timeout=RUN_TIMEOUT))["payload"]
    assert (final1["status"], final2["status"]) == ("ok", "ok"), (final1, final2)
    row1, row2 = run_row(database, first[1]["runId"]), run_row(database, second[1]["runId"])
    assert row2["started_at"] >= row1["ended_at"], (
        f"the second run started at {row2['started_at']}, "
        f"before the first ended at {row1['ended_at']}"
    )
    history = await b.ok("chat.history", {"sessionKey": first[1]["sessionKey"]})
    answers = [m["runId"] for m in history["messages"] if m["role"] == "assistant"]
    assert answers == [first[1]["runId"], second[1]["runId"]], history


@pytest.mark.redis
@pytest.mark.postgres
async def test_one_run_per_session_holds_through_a_redis_restart(
    pair: Pair,
    private_redis: PrivateRedis,
    shared_database: str,
) -> None:
    private_redis.start()
    gw_a, gw_b = pair.start(private_redis.url)
    async with connected(gw_a, name="client@A") as a, connected(gw_b, name="client@B") as b:
        key = await new_session(a)
        first = await start_run(a, {"message": "/stream 60", "sessionKey": key})
        await first_text(a, first[1]["runId"])
        private_redis.kill()
        private_redis.start()  # empty: whatever the cache knew is gone
        second = await send_until_accepted(b, {"message": "/stream 3", "sessionKey": key})
        assert run_row(shared_database, first[1]["runId"])["status"] == "running"
        await assert_one_after_the_other(a, first, b, second, shared_database)


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_run_queued_during_a_redis_outage_waits_and_completes(
    pair: Pair,
    private_redis: PrivateRedis,
    shared_database: str,
) -> None:
    private_redis.start()
    gw_a, gw_b = pair.start(private_redis.url)
    async with connected(gw_a, name="client@A") as a, connected(gw_b, name="client@B") as b:
        key = await new_session(a)
        first = await start_run(a, {"message": "/stream 100", "sessionKey": key})
        await first_text(a, first[1]["runId"])
        second = await start_run(b, {"message": "/stream 3", "sessionKey": key})
        assert run_row(shared_database, second[1]["runId"])["status"] == "queued"
        # (while Redis is down the gateways refuse new requests: UNAVAILABLE, retryable)
        private_redis.kill()
        await asyncio.sleep(3)
        private_redis.start()
        await assert_one_after_the_other(a, first, b, second, shared_database)
