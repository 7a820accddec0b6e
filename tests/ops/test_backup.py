"""``wingman backup`` / ``wingman restore`` against a real gateway process writing runs:
online backups stay consistent, a restore into a fresh state dir brings back every table
and file, and bad restores are refused without changing anything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.agents.test_e2e_agents import run_agent
from tests.gateway.gateway_process import (
    REPO,
    GatewayFactory,
    GatewayProcess,
    connected,
    gateway_env,
)

pytestmark = pytest.mark.e2e

CONFIG = {
    "agents": {
        "list": [
            {"id": "main", "default": True, "model": "wingman:slow"},
            {"id": "support", "model": "wingman:echo", "systemPrompt": "You answer support."},
        ],
        "bindings": [{"agentId": "support", "match": {"channel": "webui"}}],
    }
}


def wingman(state_dir: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m wingman ...`` with a gateway's environment for ``state_dir``."""
    return subprocess.run(
        [sys.executable, "-m", "wingman", *argv],
        env=gateway_env(state_dir),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table of a SQLite file (read-only), sorted."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)  # noqa: S608
            for n in names
        }


async def conversation(gw: GatewayProcess) -> dict:
    """What a client sees of the gateway's state: agents, sessions and their history."""
    async with connected(gw, name="reader") as c:
        agents = await c.ok("agents.list", {})
        sessions = (await c.ok("sessions.list", {}))["sessions"]
        keys = sorted(s["sessionKey"] for s in sessions)
        history = {}
        for key in keys:
            msgs = (await c.ok("chat.history", {"sessionKey": key}))["messages"]
            history[key] = [(m["role"], m["content"]) for m in msgs]
    return {"agents": agents, "sessions": keys, "history": history}


async def test_backup_while_running_then_restore(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "wingman.config.json").write_text(json.dumps(CONFIG))
    (source / "outputs" / "main").mkdir(parents=True)
    (source / "outputs" / "main" / "notes.txt").write_text("kept\n")
    gw = gateway_factory(name="source", state_dir=source)

    async def runs(n: int, session: str) -> None:
        async with connected(gw, name=session) as c:
            for i in range(n):
                _, final, _ = await run_agent(
                    c, {"message": f"{session} {i} " + "word " * 20, "sessionKey": session}
                )
                assert final["status"] == "ok", final

    writers = asyncio.gather(*(runs(4, f"agent:main:s{k}") for k in range(3)))
    online: list[Path] = []
    for i in range(3):  # backups while the runs stream (each a subprocess, like an operator)
        out = tmp_path / f"online-{i}.tar.gz"
        done = await asyncio.to_thread(wingman, source, "backup", "--out", str(out))
        assert done.returncode == 0, done.stderr + gw.log_tail()
        assert f"Backup written to {out}" in done.stdout
        online.append(out)
        await asyncio.sleep(0.3)
    await asyncio.wait_for(writers, 60)

    # every online backup is a consistent database with a truthful manifest
    for i, archive in enumerate(online):
        target = tmp_path / f"online-restored-{i}"
        done = wingman(target, "restore", str(archive))
        assert done.returncode == 0, done.stderr
        db = target / "wingman.sqlite3"
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        with tarfile.open(archive) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert manifest["format"] == "wingman-backup/1"
        assert manifest["migrations"]["agents"][:1] == ["0001_initial"]
        assert manifest["tables"] == {t: len(rows) for t, rows in dump(db).items()}

    # the final backup, taken with the gateway still up, restores everything
    final = tmp_path / "final.tar.gz"
    done = wingman(source, "backup", "--out", str(final))
    assert done.returncode == 0, done.stderr
    with tarfile.open(final) as tar:
        last = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert last["tables"]["agents_run"] == 12
    with tarfile.open(online[0]) as tar:  # the first one was taken mid-way through the runs
        first = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert first["tables"]["agents_run"] < 12, first["tables"]
    before = await conversation(gw)
    assert len(before["history"]["agent:main:s2"]) == 8, before
    assert gw.stop() == 0, gw.log_tail()

    fresh = tmp_path / "fresh"
    done = wingman(fresh, "restore", str(final))
    assert done.returncode == 0, done.stderr
    assert "Restored the backup" in done.stdout
    assert dump(fresh / "wingman.sqlite3") == dump(source / "wingman.sqlite3")
    for name in ("wingman.config.json", "secret_key", "outputs/main/notes.txt"):
        assert (fresh / name).read_bytes() == (source / name).read_bytes(), name
    assert not (fresh / "gateway.pid").exists()

    restored = gateway_factory(name="restored", state_dir=fresh)
    assert await conversation(restored) == before
    async with connected(restored, name="after") as c:  # and it keeps working
        _, f, _ = await run_agent(c, {"message": "again", "sessionKey": "agent:main:s0"})
        assert f["status"] == "ok"

    # refusals change nothing: a non-empty state dir without --force, a running gateway
    rows = dump(fresh / "wingman.sqlite3")
    done = wingman(fresh, "restore", str(online[0]))
    assert done.returncode == 2 and "not empty" in done.stderr, done
    done = wingman(fresh, "restore", str(online[0]), "--force")
    assert done.returncode == 4 and "in use by a running gateway" in done.stderr, done
    assert dump(fresh / "wingman.sqlite3") == rows


def test_restore_rejects_bad_archives(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    target = tmp_path / "target"
    done = wingman(target, "restore", str(junk))
    assert done.returncode == 1 and "not a readable backup" in done.stderr, done
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name, data in (
            ("manifest.json", json.dumps({"format": "wingman-backup/1"}).encode()),
            ("database/wingman.sqlite3", b""),
            ("files/../../escape.txt", b"x"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, __import__("io").BytesIO(data))
    done = wingman(target, "restore", str(evil))
    assert done.returncode == 1 and "outside the state dir" in done.stderr, done
    assert not (tmp_path / "escape.txt").exists()
    assert not (target / "wingman.sqlite3").exists()
    done = wingman(target, "restore", str(tmp_path / "missing.tar.gz"))
    assert done.returncode == 1 and "no such backup file" in done.stderr


def test_backup_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "pg", {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"})
    done = subprocess.run(
        [sys.executable, "-m", "wingman", "backup"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "pg_dump" in done.stderr and "pg_restore" in done.stderr
