"""Redis outages against real gateway processes and a private, throw-away ``redis-server``
(its own free port, no persistence; never the shared server on 6379).

During an outage (Redis killed, or paused with SIGSTOP), once the gateway has noticed it, a
request gets ``UNAVAILABLE`` with ``retryable: true`` and the socket stays open; every HTTP endpoint answers JSON
(``/health``: 503 ``degraded``, saying Redis is down); the outage is logged once, with no
traceback and no "Task exception was never retrieved". When Redis is back, requests
succeed again, the presence change made during the outage is published, and presence
crosses processes again. A gateway started with Redis unreachable says so in one line and
serves degraded until Redis answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.gateway_process import (
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    WsClient,
    ahttp_get,
    connect_params,
    connected,
    free_port,
    presence_has,
    run_cli,
    ws_client,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RECOVERY_TIMEOUT = 40.0
OUTAGE_WARNING = "WARNING wingman.outage: Redis unreachable"


class PrivateRedis:
    """A ``redis-server`` of this test only: kill, pause, resume and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.password: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                *(("--requirepass", self.password) if self.password else ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not listen on {self.port}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed (the outage tests run their own)")
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


async def _http(gw: GatewayProcess, path: str) -> tuple[int, str, bytes]:
    status, headers, body = await ahttp_get(gw.http_url + path, headers=AUTH, timeout=30)
    return status, headers.get("Content-Type", ""), body


async def _assert_endpoints_degraded(gw: GatewayProcess) -> None:
    """Every endpoint answers JSON (or Prometheus text), none an HTML 500 (asked at once:
    during a pause each waits for the Redis timeout)."""
    paths = ("/health", "/api/health", "/stats", "/api/stats", "/metrics")
    answers = dict(zip(paths, await asyncio.gather(*(_http(gw, p) for p in paths)), strict=True))
    for path in ("/health", "/api/health"):
        status, kind, body = answers[path]
        assert (status, kind.split(";")[0]) == (503, "application/json"), (path, status, body)
        report = json.loads(body)
        assert report["status"] == "degraded", report
        assert report["down"]["redis"].startswith("unreachable"), report
    for path in ("/stats", "/api/stats"):
        status, kind, body = answers[path]
        assert (status, kind.split(";")[0]) == (503, "application/json"), (path, status, body)
        assert "UNAVAILABLE" in body.decode(), body
    status, kind, body = answers["/metrics"]
    assert status == 200 and kind.startswith("text/plain"), (status, body[:200])
    assert b"wingman_connections " in body and b"wingman_cluster_connections" not in body


async def _assert_handshake_unavailable(gw: GatewayProcess) -> None:
    """A canonical connect (one handshake per socket) gets UNAVAILABLE, then close 1013;
    a jsonrpc client (which may retry ``auth``) keeps its socket."""
    async with ws_client(gw.url, name="newcomer") as newcomer:
        frame = await newcomer.call("connect", connect_params(), timeout=30)
        assert (frame["error"]["code"], frame["error"]["retryable"]) == ("UNAVAILABLE", True)
        code, _ = await newcomer.expect_close()
        assert code == 1013, code
    async with ws_client(gw.url, dialect="jsonrpc", name="rpc") as rpc:
        error = await rpc.error("auth", {"token": TOKEN}, timeout=30)
        assert (error["code"], error["retryable"]) == ("UNAVAILABLE", True), error
        assert rpc.ws.close_code is None, rpc.ws.close_code


async def _assert_unavailable(c: WsClient, method: str) -> None:
    frame = await c.call(method, {}, timeout=30)  # a paused Redis answers after its timeout
    assert frame["ok"] is False, frame
    error = frame["error"]
    assert (error["code"], error["retryable"]) == ("UNAVAILABLE", True), error
    assert "Redis" in error["message"], error


async def _until_ok(c: WsClient, method: str) -> Any:
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        frame = await c.call(method, {}, timeout=30)
        if frame["ok"]:
            return frame["payload"]
        assert time.monotonic() < deadline, f"{method} still failing: {frame}"
        await asyncio.sleep(0.5)


async def _until_healthy(gw: GatewayProcess) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while (status := (await _http(gw, "/health"))[0]) != 200:
        assert time.monotonic() < deadline, f"/health still {status}\n{gw.log_tail()}"
        await asyncio.sleep(0.5)


async def _presence_crosses(watcher: WsClient, other: GatewayProcess) -> None:
    """A client connecting to ``other`` is seen by ``watcher`` (retried: an event sent
    while a hub is still rejoining its groups after a Redis restart is lost)."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        instance = f"after-{uuid.uuid4()}"
        async with connected(other, name="other", instance_id=instance):
            try:
                await watcher.next_event(
                    "presence",
                    where=lambda f, i=instance: presence_has(f, reason="connect", instance_id=i),
                    timeout=3,
                )
                return
            except AssertionError:
                assert time.monotonic() < deadline, "presence does not cross processes again"


def _assert_quiet_log(gw: GatewayProcess) -> None:
    """No traceback, nothing "never retrieved"; the outage logged once, and its end."""
    log = gw.log()
    assert "Traceback" not in log, gw.log_tail(80)
    assert "never retrieved" not in log, gw.log_tail(80)
    during, recovered, _ = log.partition("Redis reachable again")
    assert recovered, gw.log_tail(80)
    # (after it, a pooled connection to the old server may still fail once, e.g. in
    # channels-redis's own clean-up task at shutdown: one more line, no traceback)
    assert during.count(OUTAGE_WARNING) == 1, gw.log_tail(80)


@pytest.mark.parametrize("fault", ["kill", "pause"])
async def test_redis_outage_answers_unavailable_keeps_sockets_and_recovers(
    gateway_factory: GatewayFactory, private_redis: PrivateRedis, fault: str
) -> None:
    private_redis.start()
    env = {
        "REDIS_URL": private_redis.url,
        "WINGMAN_RUN_EXECUTOR": "local",
        # each request during the pause waits this long for the stopped Redis (default 5 s)
        "WINGMAN_REDIS_TIMEOUT_SECONDS": "2",
    }
    gw1, gw2 = gateway_factory(env, start=False), gateway_factory(env, start=False)
    await asyncio.gather(gw1.astart(), gw2.astart())
    leaver = f"leaver-{uuid.uuid4()}"
    async with connected(gw1, name="watcher") as watcher:
        async with connected(gw1, name="leaver", instance_id=leaver):
            await watcher.ping_ok()
            private_redis.kill() if fault == "kill" else private_redis.pause()
        # the leaver's disconnect is a presence change made during the outage. The gateway
        # notices the outage (here: /health asks Redis); until then, a client far from its
        # rate limit may still get answers that need nothing else from Redis (ratelimit.py)
        await _assert_endpoints_degraded(gw1)
        await asyncio.gather(
            _assert_unavailable(watcher, "ping"),
            _assert_handshake_unavailable(gw1),
        )
        await _assert_unavailable(watcher, "health")

        private_redis.start() if fault == "kill" else private_redis.resume()
        await _until_ok(watcher, "ping")
        await _until_healthy(gw1)
        await watcher.next_event(
            "presence",
            where=lambda f: presence_has(f, reason="disconnect", instance_id=leaver),
            timeout=RECOVERY_TIMEOUT,
        )
        listed = await _until_ok(watcher, "system-presence")
        assert leaver not in {e.get("instanceId") for e in listed["presence"]}, listed
        await _presence_crosses(watcher, gw2)
        assert watcher.ws.close_code is None, "the socket was closed during the outage"
    for gw in (gw1, gw2):
        assert gw.stop() == 0, gw.log_tail()
    _assert_quiet_log(gw1)


async def test_gateway_started_without_redis_serves_degraded_until_it_answers(
    gateway_factory: GatewayFactory, private_redis: PrivateRedis
) -> None:
    private_redis.password = "hunter2"
    url = f"redis://:hunter2@127.0.0.1:{private_redis.port}/0"  # nothing listens there yet
    gw = gateway_factory({"REDIS_URL": url, "WINGMAN_RUN_EXECUTOR": "local"})
    warnings = [line for line in gw.log().splitlines() if "Redis" in line]
    assert len(warnings) == 1, gw.log_tail()
    assert warnings[0].startswith("wingman: warning: Redis at redis://:***@127.0.0.1:"), warnings
    assert "unreachable" in warnings[0] and "hunter2" not in gw.log(), warnings
    await _assert_endpoints_degraded(gw)
    health = await asyncio.to_thread(run_cli, ["gateway", "health", "--url", gw.http_url], gw.env)
    assert health.returncode == 1, health.stdout + health.stderr
    assert health.stdout.startswith("degraded:") and "redis unreachable" in health.stdout
    await _assert_handshake_unavailable(gw)
    private_redis.start()
    await _until_healthy(gw)
    async with connected(gw, name="after") as c:
        await c.ping_ok()
    assert gw.stop() == 0, gw.log_tail()
    assert "Traceback" not in gw.log(), gw.log_tail(80)
