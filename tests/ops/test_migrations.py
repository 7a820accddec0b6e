"""Migrations at start: three gateways starting at once on a fresh PostgreSQL database apply
them once (the advisory lock) and all serve; a database migrated by a newer version (an
applied migration this code does not have) is refused with one line, exit 2."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.gateway.gateway_process import REPO, GatewayFactory, gateway_env, run_cli

pytestmark = pytest.mark.e2e

APPLIED_RE = re.compile(r"^Migrations: applied (\d+)$", re.MULTILINE)


def health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def migration_rows(database: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(database, connect_timeout=5) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations"
        ).fetchone()


async def test_three_gateways_migrate_once(
    gateway_factory: GatewayFactory, empty_database: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": empty_database, "WINGMAN_RUN_EXECUTOR": "local"}
    gws = [gateway_factory(env, name=f"gw{i}", start=False) for i in range(3)]
    await asyncio.gather(*(gw.astart(timeout=90) for gw in gws))
    for gw in gws:
        assert health(gw.http_url)["status"] == "healthy", gw.log_tail()
    logs = [gw.log() for gw in gws]
    applied = [int(m.group(1)) for log in logs for m in APPLIED_RE.finditer(log)]
    up_to_date = [log for log in logs if "Migrations: database up to date" in log]
    rows, distinct = migration_rows(empty_database)
    assert len(applied) == 1 and len(up_to_date) == 2, logs
    assert applied[0] == rows == distinct > 10, (applied, rows, distinct)

    # a newer version's migration in the database: refused, nothing applied or served
    import psycopg

    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('agents', '9999_from_the_future', now())"
        )
    state = tmp_path / "newer"
    done = run_cli(
        ["gateway", "run", "--port", "0"], gateway_env(state, {"DATABASE_URL": empty_database})
    )
    assert done.returncode == 2, done
    assert done.stderr.strip() == (
        "wingman: refusing to start: the database was migrated by a newer wingman (unknown "
        "migrations: agents.9999_from_the_future); run that version or a newer one, or "
        "restore a backup taken before the upgrade"
    ), done.stderr
    assert "listening" not in done.stdout
    assert migration_rows(empty_database) == (rows + 1, distinct + 1)
    # the migrate service's command says the same
    done = run_cli(["gateway", "migrate"], gateway_env(state, {"DATABASE_URL": empty_database}))
    assert done.returncode == 2 and "9999_from_the_future" in done.stderr, done


def test_sqlite_gateway_migrate_twice(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "state")
    argv = [sys.executable, "-m", "wingman", "gateway", "migrate"]
    first = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and APPLIED_RE.search(first.stdout), first
    again = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again
    assert again.stdout.strip() == "Migrations: database up to date"
