"""End-to-end lifecycle tests: graceful SIGTERM, HTTP endpoints, dead peers, the daemon
commands and configuration errors, all against real gateway processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

import wingman
from gateway.protocol import events as ev
from tests.gateway.gateway_process import (
    TOKEN,
    GatewayProcess,
    ahttp_get,
    connect_params,
    connected,
    free_port,
    gateway_env,
    masked_text_frame,
    presence_has,
    raw_websocket,
    run_cli,
    wait_until,
    ws_client,
)

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def gateway(shared_gateway: GatewayProcess) -> GatewayProcess:
    """One gateway for the default-configuration tests of this module (health figures,
    /stats, /metrics, the schema): each closes its connections before it ends."""
    return shared_gateway


async def test_sigterm_sends_shutdown_then_1012_and_exits_0(gateway_factory, each_server) -> None:
    gw = gateway_factory({"WINGMAN_ASGI_SERVER": each_server})
    assert f"ASGI server: {each_server}" in gw.log(), gw.log_tail()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connected(gw, name=f"canonical-{i}")) for i in range(3)
        ]
        rpc = await stack.enter_async_context(ws_client(gw.url, dialect="jsonrpc", name="rpc"))
        assert (await rpc.ok("auth", {"token": TOKEN}))["ok"] is True
        clients.append(rpc)
        for c in clients:
            await c.ping_ok()

        started = time.monotonic()
        gw.signal(signal.SIGTERM)
        results = await asyncio.gather(*(c.expect_close(timeout=5) for c in clients))
        for c, (code, got) in zip(clients, results, strict=True):
            events = [f.get("event") for f in got]
            assert ev.SHUTDOWN in events, f"{c.name}: no shutdown event before close: {got}"
            assert got[-1].get("event") == ev.SHUTDOWN, f"{c.name}: frames after shutdown: {got}"
            assert got[-1]["payload"]["reason"], got[-1]
            assert code == 1012, f"{c.name}: close code {code}, expected 1012\n{gw.log_tail()}"
    exit_code = await gw.await_exit(timeout=max(0.1, 5 - (time.monotonic() - started)))
    assert exit_code is not None, f"gateway still running 5 s after SIGTERM\n{gw.log_tail()}"
    assert exit_code == 0, f"exit code {exit_code}\n{gw.log_tail()}"
    assert "Traceback" not in gw.log(), gw.log_tail()


async def test_control_ui_listener_serves_the_same_gateway(gateway_factory, each_server) -> None:
    """gateway.controlUi.port: a second listener with HTTP and WebSocket, same process."""
    gw = gateway_factory({"WINGMAN_ASGI_SERVER": each_server})
    assert gw.ui_port is not None and gw.ui_port != gw.port, gw.log_tail()
    ui_http = f"http://127.0.0.1:{gw.ui_port}"
    status, _, body = await ahttp_get(f"{ui_http}/health")
    assert status == 200 and json.loads(body)["status"] == "healthy", (status, body)
    async with (
        ws_client(f"ws://127.0.0.1:{gw.ui_port}/", name="via-ui-port") as c,
        connected(gw, name="via-gateway-port"),
    ):
        await c.handshake()
        await c.ping_ok()
        stats = (await _health(gw))["stats"]
        assert stats["totalNodes"] == 2, stats


async def test_control_ui_listener_can_be_turned_off(gateway_factory) -> None:
    gw = gateway_factory({"WINGMAN_CONTROL_UI": "false"})
    assert gw.ui_port is None and "Control UI also on" not in gw.log(), gw.log_tail()


async def _health(gw: GatewayProcess) -> dict:
    status, headers, body = await ahttp_get(f"{gw.http_url}/health")
    assert status == 200, (status, body)
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    return json.loads(body)


async def test_http_health_reflects_real_figures(gateway: GatewayProcess) -> None:
    """Seed 001's GET /health shape, with live connection and message counts."""
    first = await _health(gateway)
    assert first["status"] == "healthy" and first["version"] == wingman.__version__, first
    stats = first["stats"]
    for key in (
        "uptime",
        "totalNodes",
        "totalGroups",
        "messagesProcessed",
        "startedAt",
        "activeSessions",
    ):
        assert type(stats.get(key)) is int, f"stats.{key} missing or not an int: {stats}"
    assert type(first["timestamp"]) is int
    assert abs(first["timestamp"] - time.time() * 1000) < 60_000, first
    assert stats["totalNodes"] == 0, stats
    # counted from the process's start (booting takes well over 0.3 s), not from the hub's
    assert stats["uptime"] >= 300, stats

    async with connected(gateway, name="a") as a, connected(gateway, name="b"):
        during = await _health(gateway)
        assert during["stats"]["totalNodes"] == 2, during
        before = during["stats"]["messagesProcessed"]
        for _ in range(3):
            await a.ping_ok()
        after = (await _health(gateway))["stats"]
        assert after["messagesProcessed"] >= before + 3, (before, after)
        assert after["uptime"] >= during["stats"]["uptime"], (during, after)
        assert after["startedAt"] == stats["startedAt"], (stats, after)

    async def nodes_back_to_zero() -> bool:
        return (await _health(gateway))["stats"]["totalNodes"] == 0

    await wait_until(nodes_back_to_zero, timeout=5, what="totalNodes back to 0 after closing")


async def test_stats_and_metrics_need_the_token(gateway: GatewayProcess) -> None:
    base = gateway.http_url
    for path in ("/stats", "/metrics"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, _, body = await ahttp_get(base + path, headers=headers)
            assert status == 401, f"{path} with {headers}: {status} {body[:200]!r}"
            assert json.loads(body)["error"]["code"] == "UNAUTHORIZED"

    async with connected(gateway, instance_id="stats-client"):
        status, _, body = await ahttp_get(f"{base}/stats", headers=AUTH)
        assert status == 200, body
        data = json.loads(body)
        assert data["gateway"]["totalNodes"] == 1, data
        assert data["nodes"]["totalNodes"] == 1, data
        assert [n.get("instanceId") for n in data["nodes"]["nodes"]] == ["stats-client"], data
        assert "groups" in data, data

        status, headers, body = await ahttp_get(f"{base}/metrics", headers=AUTH)
        assert status == 200, body
        assert headers.get("Content-Type", "").startswith("text/plain"), headers
        text = body.decode()
        match = re.search(r"^wingman_connections (\S+)$", text, re.MULTILINE)
        assert match, f"no wingman_connections sample in:\n{text}"
        assert float(match.group(1)) == 1.0, match.group(0)
        assert "# TYPE wingman_connections gauge" in text
        processed = re.search(r"^wingman_messages_processed_total (\S+)$", text, re.MULTILINE)
        assert processed and float(processed.group(1)) >= 1, text


async def test_protocol_schema_json(gateway: GatewayProcess) -> None:
    status, headers, body = await ahttp_get(f"{gateway.http_url}/protocol/schema.json")
    assert status == 200, body
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    schema = json.loads(body)
    defs = schema.get("$defs")
    assert isinstance(defs, dict) and defs, schema.keys()
    for name in ("RequestFrame", "ResponseFrame", "EventFrame", "ConnectParams", "HelloOk"):
        assert name in defs, f"$defs lacks {name}: {sorted(defs)}"
    assert {"health", "ping", "subscribe"} <= set(schema["methods"]), schema["methods"]


async def test_dead_peer_is_dropped_by_ping_timeout(gateway_factory, each_server) -> None:
    """A client that never answers pings is dropped; others see its presence disconnect."""
    gw = gateway_factory(
        {
            "WINGMAN_ASGI_SERVER": each_server,
            "WINGMAN_PING_INTERVAL_MS": "500",
            "WINGMAN_PING_TIMEOUT_MS": "1000",
        }
    )
    assert f"ASGI server: {each_server}" in gw.log(), gw.log_tail()
    instance = f"silent-{uuid.uuid4()}"
    async with connected(gw, name="observer") as observer:
        sock = await asyncio.to_thread(raw_websocket, gw.port)
        try:
            frame = {
                "type": "req",
                "id": "1:silent",
                "method": "connect",
                "params": connect_params(instance_id=instance),
            }
            await asyncio.to_thread(sock.sendall, masked_text_frame(json.dumps(frame)))
            await observer.next_event(
                ev.PRESENCE, where=lambda f: presence_has(f, reason="connect", instance_id=instance)
            )
            started = time.monotonic()
            await observer.next_event(
                ev.PRESENCE,
                where=lambda f: presence_has(f, reason="disconnect", instance_id=instance),
                timeout=10,
            )
            # ping every 0.5 s, 1 s to answer: well under 10 s, but not instantly
            assert time.monotonic() - started < 10
        finally:
            sock.close()
        await observer.ping_ok()  # a client that answers pings is kept


# --------------------------------------------------------------------------------------
# daemon and CLI
# --------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _dead_pid() -> int:
    pid = 999_999
    while _pid_alive(pid):
        pid += 1
    return pid


def test_daemon_start_status_health_stop(tmp_path: Path) -> None:
    state = tmp_path / "daemon"
    env = gateway_env(state)
    port = free_port()
    started = run_cli(["gateway", "start", "--port", str(port)], env)
    match = re.search(r"pid (\d+)", started.stdout)
    pid = int(match.group(1)) if match else None
    try:
        assert started.returncode == 0, f"start failed: {started.stdout}{started.stderr}"
        assert "started" in started.stdout, started.stdout
        assert pid is not None and _pid_alive(pid), started.stdout
        assert f"127.0.0.1:{port}" in started.stdout, started.stdout

        status = run_cli(["gateway", "status"], env)
        assert status.returncode == 0, f"{status.stdout}{status.stderr}"
        assert "running" in status.stdout and str(pid) in status.stdout, status.stdout

        via_manage = run_cli(["gateway", "status"], env, cmd=[sys.executable, "manage.py"])
        assert via_manage.returncode == 0, f"{via_manage.stdout}{via_manage.stderr}"
        assert str(pid) in via_manage.stdout, via_manage.stdout

        again = run_cli(["gateway", "start", "--port", str(port)], env)
        assert again.returncode != 0, f"second start succeeded: {again.stdout}"
        assert "already running" in again.stdout + again.stderr, again.stdout

        health = run_cli(["gateway", "health", "--url", f"http://127.0.0.1:{port}"], env)
        assert health.returncode == 0, f"{health.stdout}{health.stderr}"
        assert health.stdout.startswith("healthy"), health.stdout

        stopped = run_cli(["gateway", "stop"], env)
        assert stopped.returncode == 0, f"{stopped.stdout}{stopped.stderr}"
        assert "stopped" in stopped.stdout, stopped.stdout
        assert "killed" not in stopped.stdout, f"not a graceful stop: {stopped.stdout}"
        assert not _pid_alive(pid), f"pid {pid} still alive after stop"

        status = run_cli(["gateway", "status"], env)
        assert status.returncode == 3, f"{status.returncode}: {status.stdout}"
        assert "not running" in status.stdout, status.stdout
    finally:
        if pid is not None and _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        log = state / "logs" / "wingman.log"
        if log.exists():
            sys.stdout.write(f"--- daemon log ---\n{log.read_text(errors='replace')[-4000:]}\n")


def test_status_removes_a_stale_pid_file(tmp_path: Path) -> None:
    state = tmp_path / "stale"
    state.mkdir()
    dead = _dead_pid()
    pid_file = state / "gateway.pid"
    pid_file.write_text(f"{dead}\n127.0.0.1:1\n", encoding="utf-8")
    result = run_cli(["gateway", "status"], gateway_env(state))
    assert result.returncode == 3, f"{result.returncode}: {result.stdout}{result.stderr}"
    assert "stale" in result.stdout, result.stdout
    assert not pid_file.exists(), "stale PID file left behind"


def test_bad_config_value_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "wingman.config.json"
    config.write_text(json.dumps({"gateway": {"port": "abc"}}), encoding="utf-8")
    env = gateway_env(tmp_path / "state")
    result = run_cli(["gateway", "run", "--config", str(config)], env, timeout=30)
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert "gateway.port" in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_token_generate_prints_a_token(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "state")
    first = run_cli(["gateway", "token", "--generate"], env)
    second = run_cli(["gateway", "token", "--generate"], env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    token = first.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", token), first.stdout
    assert token != second.stdout.strip(), "two generated tokens are equal"


def test_manage_py_gateway_status(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "state")
    result = run_cli(["gateway", "status"], env, cmd=[sys.executable, "manage.py"])
    assert result.returncode == 3, f"{result.returncode}: {result.stdout}{result.stderr}"
    assert "not running" in result.stdout, result.stdout
