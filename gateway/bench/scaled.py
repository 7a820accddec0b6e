"""The scaled setup the agent-stream bench starts for ``--scaled``: one gateway process and
one Celery worker on Redis, runs executing in the worker (``WINGMAN_RUN_EXECUTOR=celery``).

Both processes get a scratch state dir, a fresh token, their own channel-layer and cache
key prefixes and their own Celery queue, so the setup never meets a deployment sharing the
same Redis. They share one database: ``--scaled-database-url`` (a scratch database: the
bench's agent must be on the offline ``wingman:echo`` model, as a fresh database's ``main``
is), else one SQLite file in the scratch dir. Their keys are deleted when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from gateway.bench.client import BenchError, Endpoint

START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
_LISTENING = re.compile(r"listening on (ws://\S+)")
_WORKER_READY = re.compile(r"@\S+ ready\.")
#: What the scratch processes must not inherit from the shell that runs the bench.
_SCRUBBED = ("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")


@dataclass
class ScaledConfig:
    """How to start the setup (from the bench's command line)."""

    redis_url: str
    database_url: str | None = None
    pool: str = "threads"
    concurrency: int = 16


@dataclass
class ScaledRun:
    """A started setup: where its gateway listens and its processes."""

    config: ScaledConfig
    endpoint: Endpoint
    gateway: subprocess.Popen
    worker: subprocess.Popen

    def worker_rss_mb(self) -> float:
        """The worker's resident memory, its pool's child processes included."""
        try:
            proc = psutil.Process(self.worker.pid)
            total = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
        except psutil.Error:
            return float("nan")
        return round(total / 2**20, 1)

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.endpoint.url,
            "pool": self.config.pool,
            "concurrency": self.config.concurrency,
            "database": "sqlite" if self.config.database_url is None else "given",
            "worker_rss_mb": self.worker_rss_mb(),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(config: ScaledConfig, root: Path, token: str, tag: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WINGMAN_") and k not in _SCRUBBED
    }
    env.update(
        REDIS_URL=config.redis_url,
        DATABASE_URL=config.database_url or f"sqlite:///{root / 'db.sqlite3'}",
        WINGMAN_RUN_EXECUTOR="celery",
        WINGMAN_CHANNEL_PREFIX=f"{tag}-ch",
        WINGMAN_CACHE_PREFIX=f"{tag}-cache",
        WINGMAN_CELERY_QUEUE=f"{tag}-runs",
        WINGMAN_GATEWAY_TOKEN=token,
    )
    return env


def _spawn(args: list[str], env: dict[str, str], state_dir: Path, log: Path) -> subprocess.Popen:
    state_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            args,
            env={**env, "WINGMAN_STATE_DIR": str(state_dir)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


async def _await_log(proc: subprocess.Popen, log: Path, pattern: re.Pattern, what: str) -> str:
    """The first match of ``pattern`` in the process's log; a clear error if it exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(_read, log)
        if found := pattern.search(text):
            return found.group(found.lastindex or 0)
        if proc.poll() is not None:
            tail = "\n".join(text.splitlines()[-15:])
            raise BenchError(f"the scaled {what} exited with {proc.returncode}:\n{tail}")
        await asyncio.sleep(0.2)
    raise BenchError(f"the scaled {what} did not start within {START_TIMEOUT:g} s (log: {log})")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _forget_keys(redis_url: str, tag: str) -> None:
    """Delete the setup's channel-layer, cache and Celery keys (best effort)."""
    import redis

    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            for pattern in (f"{tag}-*", f"*{tag}-*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
        finally:
            client.close()


@contextlib.asynccontextmanager
async def scaled_setup(config: ScaledConfig) -> AsyncIterator[ScaledRun]:
    """Start the gateway (which migrates the database), then the worker; stop both after."""
    root = Path(tempfile.mkdtemp(prefix="wingman-bench-scaled-"))
    tag = f"wmbench-{secrets.token_hex(4)}"
    token = secrets.token_urlsafe(24)
    env = _environment(config, root, token, tag)
    gateway_args = [sys.executable, "-m", "wingman", "gateway", "run"]
    gateway_args += ["--host", "127.0.0.1", "--port", str(_free_port())]
    gateway = _spawn(gateway_args, env, root / "gateway", root / "gateway.log")
    worker: subprocess.Popen | None = None
    try:
        url = await _await_log(gateway, root / "gateway.log", _LISTENING, "gateway")
        worker_args = [sys.executable, "-m", "celery", "-A", "wingman", "worker"]
        worker_args += ["-P", config.pool, "-c", str(config.concurrency), "-n", f"{tag}@%h"]
        worker_args += ["--loglevel", "INFO", "--without-mingle", "--without-gossip"]
        worker = _spawn(worker_args, env, root / "worker", root / "worker.log")
        await _await_log(worker, root / "worker.log", _WORKER_READY, "worker")
        yield ScaledRun(config, Endpoint.parse(url, token=token), gateway, worker)
    finally:
        for proc in (worker, gateway):
            if proc is not None:
                await asyncio.to_thread(_stop, proc)
        await asyncio.to_thread(_forget_keys, config.redis_url, tag)
        shutil.rmtree(root, ignore_errors=True)
