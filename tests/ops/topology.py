"""The compose topology (deploy/compose.yaml) started as processes for tests/ops/test_topology.py:
``wingman gateway migrate`` once (the ``migrate`` service), two gateways, a Celery worker,
exactly one beat, on the real Redis and PostgreSQL, and Debian's nginx running
deploy/nginx/wingman.conf with the gateways' loopback ports in front of them."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.agents.e2e_runs import SLOW_MAIN
from tests.agents.test_e2e_agents import write_agents_config
from tests.gateway.gateway_process import (
    REPO,
    GatewayFactory,
    GatewayProcess,
    WorkerFactory,
    WorkerProcess,
    free_port,
    gateway_env,
)
from tests.routines.processes import BeatProcess

#: How often the beat re-reads changed schedules at most (settings'
#: CELERY_BEAT_MAX_LOOP_INTERVAL; 5 s by default): a routine created after the beat started
#: is noticed within this, so the test's routine comes due a couple of seconds after it.
BEAT_LOOP_SECONDS = "1"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (tests/run.sh installs nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return found


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
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


def connections_of(gw: GatewayProcess) -> int:
    """TCP connections open to this gateway's port (the proxy's, here)."""
    import psutil

    conns = psutil.Process(gw.pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.status == "ESTABLISHED" and c.laddr.port == gw.port)


@dataclass
class Topology:
    env: dict[str, str]
    gateways: dict[str, GatewayProcess]
    worker: WorkerProcess
    beat: BeatProcess
    proxy: Nginx


def migrate(env: dict[str, str], state_dir: Path) -> None:
    """The ``migrate`` service: once, before the gateways start."""
    done = subprocess.run(
        [sys.executable, "-m", "wingman", "gateway", "migrate"],
        env=gateway_env(state_dir, env), cwd=REPO,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "Migrations: applied" in done.stdout, done


async def start_topology(
    gateway_factory: GatewayFactory,
    worker_factory: WorkerFactory,
    env: dict[str, str],
    root: Path,
    stops: list[Callable[[], object]],
) -> Topology:
    """Every service of deploy/compose.yaml, in its dependency order; ``stops`` collects
    what stops them (the caller runs it in reverse)."""
    nginx_binary()
    migrate(env, root / "migrate")
    names = ("gateway1", "gateway2")
    for name in names:
        write_agents_config(root / name, SLOW_MAIN)
    gws = {
        name: gateway_factory(
            {**env, "WINGMAN_GATEWAY_NAME": name}, name=name, start=False, state_dir=root / name
        )
        for name in names
    }
    await asyncio.gather(*(gw.astart() for gw in gws.values()))
    for gw in gws.values():
        stops.append(gw.stop)
        assert "Migrations: database up to date" in gw.log()
    worker = await asyncio.to_thread(worker_factory, env, name="worker")
    stops.append(worker.stop)
    beat_env = {**env, "WINGMAN_BEAT_MAX_LOOP_INTERVAL": BEAT_LOOP_SECONDS}
    beat = BeatProcess(root / "beat", env=beat_env, name="beat")
    stops.append(beat.stop)
    await asyncio.to_thread(beat.start)
    proxy = await asyncio.to_thread(Nginx(root / "nginx", [g.port for g in gws.values()]).start)
    stops.append(proxy.stop)
    return Topology(env, gws, worker, beat, proxy)
