"""``wingman gateway bench --mode routines``: N routines due at the same minute, fired by
the real scheduler, on the embedded default and on the scaled setup.

Each setup runs in fresh processes started here, on a throw-away state dir (and, scaled, a
throw-away PostgreSQL database on the server of ``DATABASE_URL`` and unique Redis prefixes
and queue on ``REDIS_URL``):

- embedded: one ``wingman gateway run`` (SQLite, no broker): its own scheduler fires;
- scaled: a gateway (it migrates and imports the routines), one ``celery -A wingman
  worker -P threads`` and exactly one ``celery -A wingman beat``.

The N routines (agent ``main`` on the offline ``wingman:echo`` model, cron ``M H * * *``
for one minute at least ``--lead`` seconds ahead) are written to ``routines.json`` and
imported on start, the way a gateway imports seed 001's file. The figures come from the
database once every run ended: when all N started and finished (after the scheduled
minute), each run's start delay (p50/p99), the CPU the scheduler and the executing process
used (from the minute to the end), runs lost (scheduled, never run) and run twice. The state
dirs (``/tmp/wingman-bench-routines-*``, with the processes' logs) are removed at the end,
failed or not, unless ``keep``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from gateway.bench.client import BenchError

READY = {
    "gateway": re.compile(r"Wingman gateway listening on "),
    "worker": re.compile(r"@\S+ ready\."),
    "beat": re.compile(r"beat: Starting\.\.\."),
}
START_TIMEOUT = 120.0


@dataclass
class Proc:
    """A process started for the bench, its output in a log file."""

    role: str
    popen: subprocess.Popen
    log: Path
    cpu_at_minute: float = 0.0

    def cpu(self) -> float:
        """CPU seconds of the process and its children (a prefork worker's pool)."""
        try:
            main = psutil.Process(self.popen.pid)
            procs = [main, *main.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@dataclass
class Setup:
    name: str
    env: dict[str, str]
    state: Path
    procs: list[Proc] = field(default_factory=list)
    database: str | None = None  # PostgreSQL URL (scaled) or None (the state dir's SQLite)


def _start(setup: Setup, role: str, argv: list[str]) -> Proc:
    log = setup.state / f"{role}.log"
    out = log.open("w", encoding="utf-8")
    popen = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, *argv],
        env=setup.env,
        cwd=setup.state,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    proc = Proc(role, popen, log)
    setup.procs.append(proc)
    deadline = time.monotonic() + START_TIMEOUT
    ready = READY[role.rstrip("0123456789")]
    while not ready.search(log.read_text(encoding="utf-8", errors="replace")):
        if popen.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise BenchError(f"{setup.name}: the {role} did not start:\n{tail}")
        time.sleep(0.1)
    return proc


def _target_minute(lead: float) -> datetime:
    soon = datetime.now(UTC) + timedelta(seconds=lead)
    return (soon + timedelta(minutes=1)).replace(second=0, microsecond=0)


def _write_state(state: Path, n: int, minute: datetime) -> None:
    agents = {"agents": {"list": [{"id": "main", "default": True, "model": "wingman:echo"}]}}
    (state / "wingman.config.json").write_text(json.dumps(agents), encoding="utf-8")
    cron = f"{minute.minute} {minute.hour} * * *"
    created = datetime.now(UTC).isoformat()
    routines = [
        {
            "id": f"bench-{i:05d}",
            "name": f"Bench {i}",
            "agentId": "main",
            "cron": cron,
            "timezone": "UTC",
            "prompt": f"routine {i}",
            "enabled": True,
            "createdAt": created,
        }
        for i in range(n)
    ]
    (state / "routines.json").write_text(json.dumps(routines), encoding="utf-8")


def _base_env(state: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WINGMAN_", "DJANGO_")) and k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(
        {
            "WINGMAN_STATE_DIR": str(state),
            "WINGMAN_ENV_FILE": os.devnull,
            "WINGMAN_GATEWAY_TOKEN": uuid.uuid4().hex,
            "WINGMAN_CONTROL_UI": "false",
            "WINGMAN_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _rows(setup: Setup) -> list[dict[str, Any]]:
    query = (
        "SELECT rr.routine_id, rr.scheduled_at, rr.status AS record, r.id AS run_id, "
        "r.status, r.started_at, r.ended_at FROM routines_routinerun rr "
        "LEFT JOIN agents_run r ON r.id = rr.run_id"
    )
    if setup.database is None:
        with sqlite3.connect(f"file:{setup.state / 'wingman.sqlite3'}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(query)]
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(setup.database, row_factory=dict_row, connect_timeout=5) as db:
        return list(db.execute(query))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if value is not None else None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _wait_and_measure(setup: Setup, n: int, minute: datetime, timeout: float) -> dict[str, Any]:
    while datetime.now(UTC) < minute:
        time.sleep(min(0.2, max(0.0, (minute - datetime.now(UTC)).total_seconds())))
    for proc in setup.procs:
        proc.cpu_at_minute = proc.cpu()
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = _rows(setup)
        ended = [r for r in rows if r["ended_at"] is not None]
        if len(ended) >= n:
            break
        time.sleep(0.25)
    cpu = {p.role: round(p.cpu() - p.cpu_at_minute, 2) for p in setup.procs}
    return _figures(rows, n, minute, cpu)


def _figures(
    rows: list[dict[str, Any]], n: int, minute: datetime, cpu: dict[str, float]
) -> dict[str, Any]:
    started = [_time(r["started_at"]) for r in rows if r["started_at"] is not None]
    ended = [_time(r["ended_at"]) for r in rows if r["ended_at"] is not None]
    delays = [(t - minute).total_seconds() for t in started]
    per_routine: dict[str, int] = {}
    for r in rows:
        if r["run_id"] is not None and _time(r["scheduled_at"]) == minute:
            per_routine[r["routine_id"]] = per_routine.get(r["routine_id"], 0) + 1
    return {
        "routines": n,
        "started": len(started),
        "finished": len(ended),
        "ok": sum(1 for r in rows if r["status"] == "ok"),
        "skipped": sum(1 for r in rows if r["record"] == "skipped"),
        "lost": n - len(per_routine),
        "twice": sum(1 for count in per_routine.values() if count > 1),
        "all_started_s": round(max(delays), 3) if len(started) >= n else None,
        "all_finished_s": (
            round(max((t - minute).total_seconds() for t in ended), 3) if len(ended) >= n else None
        ),
        "start_delay_p50_s": round(_percentile(delays, 0.5), 3) if delays else None,
        "start_delay_p99_s": round(_percentile(delays, 0.99), 3) if delays else None,
        "cpu_s": cpu,
    }


@contextlib.contextmanager
def _state_dir(prefix: str, keep: bool) -> Iterator[Path]:
    """A throw-away state dir, removed when the setup is done (unless ``keep``)."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield state
    finally:
        if keep:
            print(f"wingman: bench state kept in {state}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(state, ignore_errors=True)


def _embedded(n: int, lead: float, timeout: float, keep: bool) -> dict[str, Any]:
    with _state_dir("wingman-bench-routines-", keep) as state:
        setup = Setup("embedded", _base_env(state), state)
        minute = _target_minute(lead)
        _write_state(state, n, minute)
        try:
            _start(setup, "gateway", ["-m", "wingman", "gateway", "run", "--port", "0"])
            setup.procs[0].role = "gateway (scheduler + runs)"
            return _wait_and_measure(setup, n, minute, timeout)
        finally:
            for proc in setup.procs:
                proc.stop()


def _fresh_database(url: str) -> tuple[str, str]:
    import psycopg

    parts = urlsplit(url)
    name = f"wmbench_{uuid.uuid4().hex[:12]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as db:
            db.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"scaled: could not create the bench database: {exc}") from exc
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _drop_database(url: str, name: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scaled(
    state: Path,
    n: int,
    lead: float,
    timeout: float,
    redis_url: str,
    database_url: str,
    workers: tuple[int, int],
    pool: str,
):
    database, name = _fresh_database(database_url)
    prefix = f"wmbench-{uuid.uuid4().hex[:8]}"
    env = _base_env(state) | {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database,
        "WINGMAN_CHANNEL_PREFIX": f"{prefix}-ch",
        "WINGMAN_CACHE_PREFIX": f"{prefix}-cache",
        "WINGMAN_CELERY_QUEUE": f"{prefix}-q",
    }
    setup = Setup("scaled", env, state, database=database)
    minute = _target_minute(lead)
    _write_state(state, n, minute)
    celery = ["-m", "celery", "-A", "wingman"]
    try:
        _start(setup, "gateway", ["-m", "wingman", "gateway", "run", "--port", "0"])
        processes, concurrency = workers
        worker = [*celery, "worker", "-P", pool, "-c", str(concurrency), "--loglevel", "INFO"]
        worker += ["--without-mingle", "--without-gossip"]
        for i in range(1, processes + 1):
            role = "worker" if processes == 1 else f"worker{i}"
            _start(setup, role, [*worker, "-n", f"{role}-{prefix}@%h"])
        beat = [*celery, "beat", "--loglevel", "INFO", "-s", str(state / "beat-schedule")]
        _start(setup, "beat", beat)
        return _wait_and_measure(setup, n, minute, timeout)
    finally:
        for proc in reversed(setup.procs):
            proc.stop()
        _drop_database(database_url, name)


def measure(
    *,
    n: int,
    setups: list[str],
    lead: float,
    timeout: float,
    redis_url: str | None,
    database_url: str | None,
    workers: int,
    pool: str = "prefork",
    worker_processes: int = 1,
    keep: bool = False,
) -> dict[str, Any]:
    """Run the chosen setups one after the other; the report has one entry per setup.
    Scaled: ``worker_processes`` Celery workers of ``workers`` slots each. ``keep``: leave
    each setup's state dir (its processes' logs) behind."""
    report: dict[str, Any] = {"mode": "routines", "routines": n, "setups": {}}
    for name in setups:
        if name == "embedded":
            report["setups"][name] = _embedded(n, lead, timeout, keep)
        else:
            if not redis_url or not database_url:
                raise BenchError("scaled: set REDIS_URL and DATABASE_URL (a PostgreSQL server)")
            slots = (worker_processes, workers)
            with _state_dir("wingman-bench-routines-scaled-", keep) as state:
                report["setups"][name] = _scaled(
                    state, n, lead, timeout, redis_url, database_url, slots, pool
                )
    return report


def table(report: dict[str, Any]) -> str:
    """The report as text."""
    lines = [
        f"wingman gateway bench --mode routines: {report['routines']} routines due at one minute"
    ]
    for name, fig in report["setups"].items():
        lines += [
            f"  {name}:",
            f"    started {fig['started']}/{fig['routines']}, finished {fig['finished']}, "
            f"ok {fig['ok']}, skipped {fig['skipped']}, lost {fig['lost']}, twice {fig['twice']}",
            f"    all started after {fig['all_started_s']} s, all finished after "
            f"{fig['all_finished_s']} s (from the scheduled minute)",
            f"    start delay p50 {fig['start_delay_p50_s']} s, p99 {fig['start_delay_p99_s']} s",
            "    CPU from the minute to the end: "
            + ", ".join(f"{role} {seconds} s" for role, seconds in fig["cpu_s"].items()),
        ]
    return "\n".join(lines)
