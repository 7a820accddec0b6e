"""One gateway per state dir (gateway/server/statelock.py), with real processes.

A second ``wingman gateway run`` on a served state dir refuses before it touches anything:
no migrations, no config import (a deleted agent stays deleted), no run recovery (the live
gateway's run goes on), one line naming the running gateway, exit 4. ``gateway status``
and ``gateway start`` know a foreground gateway; a SIGKILLed gateway leaves no stale lock.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    connected,
    free_port,
    gateway_env,
    run_cli,
)

pytestmark = pytest.mark.e2e

EXIT_ALREADY_RUNNING = 4
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AGENTS = [
    {"id": "main", "default": True, "model": "wingman:slow"},
    {"id": "support", "model": "wingman:echo"},
]


def _write_config(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    config = {"agents": {"list": AGENTS}}
    (state / "wingman.config.json").write_text(json.dumps(config), encoding="utf-8")


def _assert_refused(result, gw: GatewayProcess) -> None:
    """Exit 4 with one stderr line naming the running gateway's pid and port."""
    assert result.returncode == EXIT_ALREADY_RUNNING, (
        f"{result.returncode}: {result.stdout}{result.stderr}"
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"pid {gw.proc.pid}" in lines[0] and f":{gw.port}/" in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert "agents:" not in result.stdout, f"it imported the config: {result.stdout}"


async def test_second_gateway_on_a_served_state_dir_changes_nothing(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    _write_config(state)
    gw = gateway_factory(state_dir=state)
    env = gateway_env(state)
    async with httpx.AsyncClient(base_url=gw.http_url, headers=AUTH, timeout=15) as api:
        assert (await api.delete("/api/agents/support")).status_code == 204
        async with connected(gw, name="requester") as c:
            frame = c.request_frame("agent", {"message": "/stream 60"})
            await c.send(frame)
            ack = await c.response(frame["id"])
            run_id = ack["payload"]["runId"]
            await c.next_event("agent", where=lambda f: f["payload"]["type"] == "agent-stream")

            for port in (str(gw.port), "0"):  # its own port (bind fails) and a free one
                second = await asyncio.to_thread(
                    run_cli, ["gateway", "run", "--port", port], env, timeout=30
                )
                _assert_refused(second, gw)

            final = await c.response(frame["id"], timeout=30)
            assert (final["payload"]["runId"], final["payload"]["status"]) == (run_id, "ok"), final
            await c.ping_ok()
        assert (await api.get("/api/agents/support")).status_code == 404, "agent re-created"

    status = await asyncio.to_thread(run_cli, ["gateway", "status"], env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"pid {gw.proc.pid}, foreground" in status.stdout, status.stdout
    assert f"127.0.0.1:{gw.port}" in status.stdout, status.stdout
    start = await asyncio.to_thread(run_cli, ["gateway", "start", "--port", "0"], env)
    assert start.returncode == EXIT_ALREADY_RUNNING, start.stdout + start.stderr
    assert "already running" in start.stdout and str(gw.proc.pid) in start.stdout, start.stdout

    gw.signal(signal.SIGKILL)  # the kernel releases the lock: nothing stale is left
    assert await gw.await_exit(10) is not None
    after = gateway_factory(state_dir=state, name="after-kill")
    status = await asyncio.to_thread(run_cli, ["gateway", "status"], env)
    assert f"pid {after.proc.pid}, foreground" in status.stdout, status.stdout


def test_daemon_holds_the_state_dir_too(tmp_path: Path) -> None:
    state = tmp_path / "daemon"
    env = gateway_env(state)
    port = free_port()
    started = run_cli(["gateway", "start", "--port", str(port)], env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
        second = run_cli(["gateway", "run", "--port", "0"], env, timeout=30)
        assert second.returncode == EXIT_ALREADY_RUNNING, second.stdout + second.stderr
        assert f"pid {pid}, ws://127.0.0.1:{port}/" in second.stderr, second.stderr
        status = run_cli(["gateway", "status"], env)
        assert status.returncode == 0 and f"(pid {pid})" in status.stdout, status.stdout
    finally:
        stopped = run_cli(["gateway", "stop"], env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout
    assert run_cli(["gateway", "status"], env).returncode == 3


def test_gateway_stop_stops_a_foreground_gateway(gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory()
    stopped = run_cli(["gateway", "stop"], gw.env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped (pid {gw.proc.pid})" in stopped.stdout, stopped.stdout
    assert gw.wait(10) == 0, gw.log_tail()
    assert run_cli(["gateway", "status"], gw.env).returncode == 3
