"""``wingman init`` and ``wingman agents import`` as a user runs them (the real CLI in a
subprocess, its own state dir): they take exactly what the API and the admin take, and a
refusal is one line, exit 2, with nothing written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.gateway.gateway_process import gateway_env, run_cli

MODEL_RULE = 'expected "provider:model"'


def agents_in(state: Path) -> dict[str, tuple[str, list[str]]]:
    """{id: (model, tools)} straight from the state dir's database."""
    db = state / "wingman.sqlite3"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, model, tools FROM agents_agent").fetchall()
    return {agent_id: (model, json.loads(tools)) for agent_id, model, tools in rows}


def one_line_error(result, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == "", result.stdout
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--model", "nocolon"], ["--model 'nocolon'", MODEL_RULE]),
        (["--model", "openai:"], ["--model 'openai:'", MODEL_RULE]),
        (["--agent", "Bad Id"], ["--agent 'Bad Id'", "lowercase letters"]),
        (["--skip-agent", "--model", "nocolon"], ["--model 'nocolon'"]),
    ],
)
def test_init_refuses_what_the_api_refuses_and_writes_nothing(tmp_path, flags, needles):
    state = tmp_path / "state"
    result = run_cli(["init", *flags], gateway_env(state))
    one_line_error(result, *needles)
    assert not (state / "wingman.config.json").exists()
    assert agents_in(state) == {}


def test_init_writes_the_config_and_the_starter_agent(tmp_path):
    state = tmp_path / "state"
    result = run_cli(["init", "--model", "wingman:slow"], gateway_env(state))
    assert result.returncode == 0, result.stderr
    written = json.loads((state / "wingman.config.json").read_text())
    assert written["agents"]["list"] == [
        {
            "id": "main",
            "default": True,
            "tools": ["list_files", "read_file"],
            "model": "wingman:slow",
        }
    ]
    assert agents_in(state) == {"main": ("wingman:slow", ["list_files", "read_file"])}


@pytest.mark.parametrize(
    ("bad_entry", "needles"),
    [
        ({"id": "bad", "model": "nocolon"}, ["agents.list[1].model", MODEL_RULE]),
        ({"id": "bad", "model": 123}, ["agents.list[1].model: must be a string"]),
        ({"id": "bad", "tools": "list_files"}, ["agents.list[1].tools: a list of tool names"]),
        ({"id": "bad", "tools": ["rm"]}, ["agents.list[1].tools", "unknown tool(s) ['rm']"]),
        ({"id": "bad", "default": "yes"}, ["agents.list[1].default: must be true or false"]),
        ({"id": "Bad!"}, ["agents.list[1].id", "lowercase letters"]),
        ({"id": "good"}, ["agents.list[1].id: 'good' is listed twice"]),
    ],
)
def test_agents_import_refuses_a_bad_entry_and_imports_nothing(tmp_path, bad_entry, needles):
    state = tmp_path / "state"
    env = gateway_env(state)
    assert run_cli(["init", "--skip-config"], env).returncode == 0
    before = agents_in(state)
    config = tmp_path / "agents.json"
    entries = [{"id": "good", "model": "wingman:echo"}, bad_entry]
    config.write_text(json.dumps({"agents": {"list": entries}}))
    result = run_cli(["agents", "import", "--config", str(config)], env)
    line = one_line_error(result, *needles)
    assert line.startswith("wingman: config error: "), line
    assert agents_in(state) == before  # "good" (listed first) was not imported either


def test_agents_import_with_a_bad_file_creates_no_database(tmp_path):
    state = tmp_path / "state"
    config = tmp_path / "agents.json"
    config.write_text(json.dumps({"agents": {"list": [{"id": "x", "model": "nocolon"}]}}))
    result = run_cli(["agents", "import", "--config", str(config)], gateway_env(state))
    one_line_error(result, "agents.list[0].model")
    assert not (state / "wingman.sqlite3").exists()
