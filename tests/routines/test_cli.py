"""``wingman routines ...`` as a user runs it: the real CLI in a subprocess on its own state
dir (SQLite), an agent from ``wingman init``; refusals are one line, exit 2, nothing saved."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.gateway.gateway_process import gateway_env, run_cli

ADD = ["routines", "add", "--name", "news", "--agent", "main", "--prompt", "the news please"]


@pytest.fixture(scope="module")
def initialized(tmp_path_factory) -> Path:
    """A state dir after ``wingman init`` (the offline starter agent ``main``), made once:
    each test works on its own copy (``fresh_state``)."""
    state = tmp_path_factory.mktemp("routines-cli") / "state"
    result = run_cli(["init"], gateway_env(state))
    assert result.returncode == 0, result.stderr
    return state


def fresh_state(initialized: Path, state: Path) -> dict[str, str]:
    """Copy the initialized state dir to ``state``; the environment of a CLI on it."""
    shutil.copytree(initialized, state)
    return gateway_env(state)


@pytest.fixture
def state(initialized, tmp_path) -> tuple[Path, dict[str, str]]:
    """A state dir of this test with the offline starter agent ``main``."""
    state = tmp_path / "state"
    return state, fresh_state(initialized, state)


def wingman(env: dict[str, str], *args: str):
    return run_cli(list(args), env, timeout=120)


def rows(state: Path) -> list[tuple]:
    with sqlite3.connect(state / "wingman.sqlite3") as conn:
        return conn.execute("SELECT id, name, enabled FROM routines_routine").fetchall()


def ok_json(result) -> dict | list:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--cron", "99 99 * * *"], ["--cron", "99"]),
        (["--cron", "bad cron"], ["--cron"]),
        (["--cron", "0 9 * * 1 5"], ["--cron"]),
        (["--cron", "@daily", "--tz", "Mars/Base"], ["--tz", "Mars/Base"]),
        (["--every", "soon"], ["--every", "soon"]),
        (["--cron", "@daily", "--target", "session"], ["--session"]),
    ],
)
def test_add_refuses_bad_input_in_one_line_and_saves_nothing(state, flags, needles):
    path, env = state
    result = wingman(env, *ADD, *flags)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wingman: invalid routine: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert rows(path) == []


def test_lifecycle(state):
    path, env = state
    routine = ok_json(
        wingman(env, *ADD, "--cron", "0 9 * * 1-5", "--tz", "Europe/Berlin", "--json")
    )
    rid = routine["id"]
    assert routine["timezone"] == "Europe/Berlin" and len(routine["nextRuns"]) == 5
    listed = ok_json(wingman(env, "routines", "list", "--json"))
    assert [r["id"] for r in listed] == [rid]
    text = wingman(env, "routines", "list")
    assert rid in text.stdout and "0 9 * * 1-5" in text.stdout
    edited = ok_json(wingman(env, "routines", "edit", rid, "--every", "30m", "--json"))
    assert edited["scheduleKind"] == "every" and edited["everySeconds"] == 1800
    assert ok_json(wingman(env, "routines", "disable", rid, "--json"))["enabled"] is False
    assert ok_json(wingman(env, "routines", "enable", rid, "--json"))["enabled"] is True
    ran = ok_json(wingman(env, "routines", "run", rid, "--json"))
    assert ran["status"] == "ok" and ran["answer"] and ran["runId"]
    assert ran["sessionKey"] == f"agent:main:routine:{rid}"
    runs = ok_json(wingman(env, "routines", "runs", rid, "--json"))
    assert runs["total"] == 1 and runs["runs"][0]["runId"] == ran["runId"]
    assert runs["runs"][0]["status"] == "ok"
    removed = wingman(env, "routines", "remove", rid)
    assert removed.returncode == 0 and rows(path) == []
    again = wingman(env, "routines", "remove", rid)
    assert again.returncode == 1 and rid in again.stderr


def test_unknown_id_and_nothing_to_change(state):
    _, env = state
    for command in ("edit", "enable", "disable", "run", "runs", "remove"):
        args = ["routines", command, "ghost"] + (["--name", "x"] if command == "edit" else [])
        result = wingman(env, *args)
        assert result.returncode == 1 and "ghost" in result.stderr, (command, result.stderr)
    ok_json(wingman(env, *ADD, "--cron", "@hourly", "--id", "r1", "--json"))
    result = wingman(env, "routines", "edit", "r1")
    assert result.returncode == 2 and "nothing to change" in result.stderr


def test_export_import_round_trip(state, initialized, tmp_path):
    _, env = state
    ok_json(wingman(env, *ADD, "--cron", "0 9 * * 1-5", "--id", "daily", "--json"))
    ok_json(wingman(env, *ADD, "--every", "15m", "--id", "often", "--disabled", "--json"))
    exported = ok_json(wingman(env, "routines", "export"))
    assert [e["id"] for e in exported] == ["daily", "often"]
    assert exported[0]["cron"] == "0 9 * * 1-5" and exported[1]["enabled"] is False
    file = tmp_path / "routines.json"
    file.write_text(json.dumps(exported))
    other = fresh_state(initialized, tmp_path / "other")
    imported = wingman(other, "routines", "import", str(file))
    assert imported.returncode == 0 and "2 created" in imported.stdout, imported.stderr
    assert ok_json(wingman(other, "routines", "export")) == exported
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([*exported, {**exported[0], "id": "x", "cron": "61 * * * *"}]))
    refused = wingman(other, "routines", "import", str(bad))
    assert refused.returncode == 2 and "routines[2].cron" in refused.stderr
    assert sorted(r[0] for r in rows(tmp_path / "other")) == ["daily", "often"]
