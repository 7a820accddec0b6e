"""End to end: a flood of 2,000 deliveries, as fast as a client can send them, to one
rate-limited webhook on the real server. The accepted ones each produce exactly one run, the
rest are 429 with Retry-After, and the gateway stays responsive: a WebSocket ping is
answered within 50 ms throughout."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.gateway.gateway_process import connected, wait_until
from tests.webhooks.e2e import create_webhook, deliver

# serial: the ping budget measures this gateway, not the other tests running beside it
pytestmark = [pytest.mark.e2e, pytest.mark.serial]

DELIVERIES = 2000
LIMIT = 30  # per minute: a flood of a few seconds lands in at most two windows
CONCURRENCY = 32
PING_BUDGET = 0.050


def _runs(state: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(state / "wingman.sqlite3") as db:
        return db.execute(
            "SELECT r.id, r.status FROM agents_run r JOIN agents_session s ON s.id = r.session_id"
            " WHERE s.key = 'agent:main:webhook:flood'"
        ).fetchall()


_FLOOD = """
import asyncio, json, sys
import httpx

url, secret, total, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


async def main():
    queue = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    answers = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def sender():
            while not queue.empty():
                i = queue.get_nowait()
                r = await http.post(
                    "/webhooks/flood", json={"event": "tick", "n": i},
                    headers={"X-Wingman-Secret": secret},
                )
                answers.append([r.status_code, r.json(), r.headers.get("Retry-After")])

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    print(json.dumps(answers))


asyncio.run(main())
"""


async def _flood(gw, secret: str) -> list[list]:
    """The flood, from another process (this one's loop measures the pings):
    [status, body, Retry-After] per delivery."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _FLOOD,
        gw.http_url,
        secret,
        str(DELIVERIES),
        str(CONCURRENCY),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


async def test_flood_of_deliveries_to_a_rate_limited_webhook(gateway_factory, tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir(parents=True)
    # the pinger pings every 20 ms: more than a client's default 100 requests a minute
    config = {
        "gateway": {"policy": {"rateLimitPerMinute": 100_000}},
        "agents": {"list": [{"id": "main", "default": True, "model": "wingman:echo"}]},
    }
    (state / "wingman.config.json").write_text(json.dumps(config))
    gw = gateway_factory(name="gw", state_dir=state)
    secret = create_webhook(gw, name="Flood", rate_limit=LIMIT)
    # a warm gateway: the first run in a process imports the agent runtime (LangChain,
    # LangGraph: a few hundred ms, once); that is not what this test measures
    warm = create_webhook(gw, name="Warm")
    response = await asyncio.to_thread(deliver, gw, "warm", {"prompt": "hello"}, warm)
    assert response.status_code == 202
    async with connected(gw, name="warmer") as c:
        waited = await c.ok("agent.wait", {"runId": response.json()["runId"], "timeoutMs": 15000})
        assert waited["status"] == "ok", waited
    # ... and the refusal path (its batched log writer) has run once
    refused = await asyncio.to_thread(deliver, gw, "warm", {}, "not-the-secret")
    assert refused.status_code == 401
    async with connected(gw, name="pinger") as pinger:
        flood_started = time.perf_counter()
        flood = asyncio.create_task(_flood(gw, secret))
        pings: list[float] = []
        while not flood.done():
            started = time.perf_counter()
            await pinger.ping_ok()
            pings.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        answers = flood.result()
        flood_seconds = time.perf_counter() - flood_started
    statuses = [status for status, _, _ in answers]
    accepted = [body for status, body, _ in answers if status == 202]
    refused = [retry for status, _, retry in answers if status == 429]
    assert len(answers) == DELIVERIES
    assert len(accepted) + len(refused) == DELIVERIES, sorted(set(statuses))
    assert LIMIT <= len(accepted) <= 2 * LIMIT, len(accepted)
    assert all(1 <= int(retry) <= 60 for retry in refused)
    run_ids = [a["runId"] for a in accepted]
    assert len(set(run_ids)) == len(run_ids)

    async def all_ended():
        runs = await asyncio.to_thread(_runs, state)
        return runs if all(status not in ("queued", "running") for _, status in runs) else None

    runs = await wait_until(all_ended, timeout=120, interval=0.5, what="every run ended")
    assert sorted(run_id for run_id, _ in runs) == sorted(run_ids)  # exactly one run each
    assert {status for _, status in runs} == {"ok"}
    assert len(pings) >= 5, pings
    print(
        f"flood: {DELIVERIES} deliveries in {flood_seconds:.1f} s, {len(accepted)} accepted;"
        f" {len(pings)} pings, slowest {max(pings) * 1000:.1f} ms"
    )
    slow = [round(p * 1000, 1) for p in pings if p > PING_BUDGET]
    assert not slow, f"pings over 50 ms during the flood: {slow} of {len(pings)}"
