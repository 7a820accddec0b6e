"""``wingman rooms list|create|delete|broadcast|history`` as a user runs them: the real CLI in
a subprocess against a real gateway process (its three agents on the offline model)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.gateway.gateway_process import TOKEN, GatewayProcess, gateway_env, run_cli
from tests.rooms.e2e import trio_gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from trio_gateway(tmp_path_factory, "rooms-cli", model="wingman:echo")


def cli(gw: GatewayProcess, tmp_path, *args: str):
    """The CLI from another state dir, pointed at the gateway with --gateway/--token."""
    env = gateway_env(tmp_path / "cli-state")
    return run_cli(["rooms", *args, "--gateway", f"{gw.url}ws", "--token", TOKEN], env)


def ok_json(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_create_list_broadcast_history_delete(gw, tmp_path):
    created = ok_json(
        cli(gw, tmp_path, "create", "cli-room", "--agent", "alpha", "--agent", "beta", "--json")
    )
    assert created["name"] == "cli-room" and created["agents"] == ["alpha", "beta"]
    room_id = created["id"]

    listed = cli(gw, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{room_id}  cli-room [parallel] — alpha, beta" in listed.stdout
    assert [r["id"] for r in ok_json(cli(gw, tmp_path, "list", "--json"))] == [room_id]

    sent = cli(gw, tmp_path, "broadcast", room_id, "review PR 123")
    assert sent.returncode == 0, (sent.stdout, sent.stderr)
    lines = sent.stdout.splitlines()
    assert lines[0] == f"Broadcast to {room_id}: 2 agent run(s), parallel"
    assert sorted(lines[1:]) == [
        "[alpha] You said: review PR 123",
        "[beta] You said: review PR 123",
    ]

    events = cli(gw, tmp_path, "broadcast", "cli-room", "again", "--json")  # by name
    assert events.returncode == 0, events.stderr
    steps = [json.loads(line) for line in events.stdout.splitlines()]
    assert {s["agentId"] for s in steps} == {"alpha", "beta"}
    assert sum(s["type"] == "agent-complete" for s in steps) == 2
    assert all(s["roomId"] == room_id for s in steps)

    history = cli(gw, tmp_path, "history", room_id)
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines()[0].endswith("review PR 123")
    assert "[alpha] You said: review PR 123" in history.stdout
    entries = ok_json(cli(gw, tmp_path, "history", room_id, "--json", "--limit", "2"))["messages"]
    assert len(entries) == 2 and {e["agentId"] for e in entries} == {"alpha", "beta"}

    deleted = cli(gw, tmp_path, "delete", room_id)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"Deleted room {room_id}"
    assert ok_json(cli(gw, tmp_path, "list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["create", "bad", "--agent", "nobody"], "NOT_FOUND: no agent 'nobody'"),
        (["create", "   "], "INVALID_REQUEST"),
        (["delete", "missing"], "NOT_FOUND: no room 'missing'"),
        (["broadcast", "missing", "hi"], "NOT_FOUND: no room 'missing'"),
        (["history", "missing"], "NOT_FOUND: no room 'missing'"),
    ],
)
def test_errors_are_one_clear_line(gw, tmp_path, args, needle):
    result = cli(gw, tmp_path, *args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert ok_json(cli(gw, tmp_path, "list", "--json")) == []


def test_unreachable_gateway_and_bad_limit(tmp_path):
    env = gateway_env(tmp_path / "cli-state")
    result = run_cli(["rooms", "list", "--gateway", "ws://127.0.0.1:9/ws"], env)
    assert result.returncode == 1
    assert "cannot reach the gateway at ws://127.0.0.1:9/ws" in result.stderr
    result = run_cli(["rooms", "history", "r", "--limit", "0"], env)
    assert result.returncode == 2 and "--limit must be between 1 and 1000" in result.stderr
