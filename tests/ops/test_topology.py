"""The compose topology (deploy/compose.yaml) as processes: ``wingman gateway migrate`` once,
two gateways, a Celery worker and exactly one beat on real Redis and PostgreSQL, and Debian's
nginx running deploy/nginx/wingman.conf in front of the gateways. A client through the proxy
runs an agent; the gateway it is connected to is restarted mid-run; the run (executing in
the worker) completes and the client, reconnected through the proxy, reads its answer. SSE
through the proxy streams unbuffered."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agents.e2e_runs import (
    SLOW_MAIN,
    first_text,
    new_session,
    run_row,
    start_run,
    stream_text,
)
from tests.agents.test_api_e2e import sse_events
from tests.agents.test_e2e_agents import E2E_REDIS_URL, RUN_TIMEOUT, write_agents_config
from tests.agents.test_e2e_scaled import delete_unacked, scaled_env
from tests.conftest import delete_redis_prefix, require_redis
from tests.gateway.gateway_process import (
    REPO,
    TOKEN,
    GatewayFactory,
    GatewayProcess,
    WorkerFactory,
    gateway_env,
    ws_client,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (tests/run.sh installs nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """Debian's nginx running deploy/nginx/wingman.conf with the gateways' loopback ports."""

    def __init__(self, root: Path, upstreams: list[int]) -> None:
        self.root = root
        self.port = free_port()
        conf = (REPO / "deploy" / "nginx" / "wingman.conf").read_text()
        for i, port in enumerate(upstreams, start=1):
            assert f"server gateway{i}:18789 " in conf
            conf = conf.replace(f"server gateway{i}:18789 ", f"server 127.0.0.1:{port} ")
        assert "    listen 80;" in conf
        conf = conf.replace("    listen 80;", f"    listen 127.0.0.1:{self.port};")
        root.mkdir(parents=True, exist_ok=True)
        (root / "wingman.conf").write_text(conf)
        temp = " ".join(
            f"{kind}_temp_path {root}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
        )
        user = "user root;" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(
            f"{user} worker_processes 1; pid {root}/nginx.pid; error_log stderr warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{ access_log off; {temp} uwsgi_temp_path {root}/uwsgi; "
            f"scgi_temp_path {root}/scgi; include {root}/wingman.conf; }}\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> Nginx:
        argv = [nginx_binary(), "-p", str(self.root), "-c", str(self.root / "nginx.conf")]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [*argv, "-g", "daemon off;"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError("nginx did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Beat(GatewayProcess):
    """``celery -A wingman beat`` (exactly one per installation)."""

    def start(self, timeout: float = 30.0) -> Beat:
        self._spawn([sys.executable, "-m", "celery", "-A", "wingman", "beat", "--loglevel", "INFO"])
        self._await_line(lambda line: "beat: Starting..." in line, "start line", "started", timeout)
        return self


@pytest.fixture
def cleanup() -> Iterator[list]:
    stops: list = []
    yield stops
    for stop in reversed(stops):
        stop()


def connections_of(gw: GatewayProcess) -> int:
    """TCP connections open to this gateway's port (the proxy's, here)."""
    import psutil

    conns = psutil.Process(gw.pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.status == "ESTABLISHED" and c.laddr.port == gw.port)


async def test_compose_topology_as_processes(
    gateway_factory: GatewayFactory,
    worker_factory: WorkerFactory,
    shared_database: str,
    tmp_path: Path,
    cleanup: list,
) -> None:
    nginx_binary()
    require_redis()
    prefix = f"wmtopo-{uuid.uuid4().hex[:12]}"
    env = scaled_env(shared_database, prefix)
    cleanup.append(lambda: delete_unacked(env["WINGMAN_CELERY_QUEUE"]))
    cleanup.append(lambda: delete_redis_prefix(prefix, E2E_REDIS_URL))

    # the `migrate` service, then everything that depends on it
    migrate = subprocess.run(
        [sys.executable, "-m", "wingman", "gateway", "migrate"],
        env=gateway_env(tmp_path / "migrate", env), cwd=REPO,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0 and "Migrations: applied" in migrate.stdout, migrate
    for name in ("gateway1", "gateway2"):
        write_agents_config(tmp_path / name, SLOW_MAIN)
    gws = {
        name: gateway_factory(
            {**env, "WINGMAN_GATEWAY_NAME": name},
            name=name,
            start=False,
            state_dir=tmp_path / name,
        )
        for name in ("gateway1", "gateway2")
    }
    await asyncio.gather(*(gw.astart() for gw in gws.values()))
    for gw in gws.values():
        cleanup.append(gw.stop)
        assert "Migrations: database up to date" in gw.log()
    worker = await asyncio.to_thread(worker_factory, env, name="worker")
    cleanup.append(worker.stop)
    beat = Beat(tmp_path / "beat", env=env, name="beat")
    cleanup.append(beat.stop)
    await asyncio.to_thread(beat.start)
    proxy = await asyncio.to_thread(Nginx(tmp_path / "nginx", [g.port for g in gws.values()]).start)
    cleanup.append(proxy.stop)

    ws_url = f"ws://127.0.0.1:{proxy.port}/ws"
    async with ws_client(ws_url, name="client-1") as c:
        await c.handshake()
        key = await new_session(c)
        _, ack = await start_run(c, {"message": "/stream 60", "sessionKey": key})
        run_id = ack["runId"]
        await first_text(c, run_id)
        (holder,) = [g for g in gws.values() if connections_of(g) == 1]
        holder.signal()  # SIGTERM: drain, close 1012
        code, _ = await c.expect_close(timeout=10)
        assert code == 1012, code
    assert holder.wait(15) == 0, holder.log_tail()

    # reconnect through the proxy (it now reaches the other gateway); the run goes on
    async with ws_client(ws_url, name="client-2") as c:
        await c.handshake()
        waited = await c.ok("agent.wait", {"runId": run_id, "timeoutMs": 20_000}, timeout=25)
        assert waited["status"] == "ok", waited
        history = await c.ok("chat.history", {"sessionKey": key})
        assert history["messages"][-1]["content"] == stream_text(60)
    row = run_row(shared_database, run_id)
    assert (row["status"], row["executor"], row["owner_pid"]) == ("ok", "celery", worker.pid)

    # the restarted gateway serves again; SSE through the proxy arrives as it is produced
    restarted = gateway_factory(
        {**env, "WINGMAN_GATEWAY_NAME": holder.name},
        name=f"{holder.name}-again",
        state_dir=holder.state_dir,
    )
    assert httpx.get(f"{restarted.http_url}/health", timeout=5).json()["status"] == "healthy"
    for _ in range(4):  # both gateways serve through the proxy (round robin)
        assert httpx.get(f"{proxy.http}/health", timeout=5).json()["status"] == "healthy"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=proxy.http, headers=auth, timeout=30) as api:
        created = api.post("/api/runs", json={"message": "/stream 30", "sessionKey": key})
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
    assert beat.running and worker.running
    assert "beat: Starting..." in beat.log()
