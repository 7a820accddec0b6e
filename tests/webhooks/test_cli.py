"""``wingman webhooks ...`` as a user runs it (the real CLI in a subprocess, its own state
dir): add prints the secret once, bad input is one line naming the flag with exit 2 and
nothing saved, --json prints the API's shapes. ``test`` against a running gateway:
tests/webhooks/test_api_e2e.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.protocol.webhooks import DeliveryResult, WebhookResult, WebhookSecretResult
from tests.gateway.gateway_process import gateway_env, run_cli
from webhooks import secrets


def rows(state: Path) -> dict[str, dict]:
    """Webhooks straight from the state dir's database."""
    db = state / "wingman.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute("SELECT * FROM webhooks_webhook").fetchall()
    return {row["id"]: dict(row) for row in found}


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A state dir with the starter agent ``main`` (``wingman init``)."""
    state = tmp_path_factory.mktemp("cli") / "state"
    env = gateway_env(state)
    done = run_cli(["init", "--skip-config"], env)
    assert done.returncode == 0, done.stderr
    return state, env


def test_add_list_rotate_remove(state):
    path, env = state
    added = run_cli(
        ["webhooks", "add", "--name", "Gmail inbox", "--agent", "main", "--preset", "gog-gmail"],
        env,
    )
    assert added.returncode == 0, added.stderr
    secret = next(line.split()[-1] for line in added.stdout.splitlines() if "secret:" in line)
    assert secret.startswith("whsec_")
    assert "POST http://127.0.0.1:" in added.stdout and "/webhooks/gmail-inbox" in added.stdout
    assert f"--hook-token {secret}" in added.stdout  # the gogcli command line, ready to paste
    assert f"Authorization: Bearer {secret}" in added.stdout  # and the curl example
    stored = rows(path)["gmail-inbox"]
    assert secret not in json.dumps(stored)
    assert secrets.secret_matches(secret, [stored["secret_hash"]])

    listed = run_cli(["webhooks", "list", "--json"], env)
    hooks = [WebhookResult.model_validate(h) for h in json.loads(listed.stdout)]
    assert [h.id for h in hooks] == ["gmail-inbox"] and secret not in listed.stdout
    plain = run_cli(["webhooks", "list"], env)
    assert plain.stdout.startswith("gmail-inbox: Gmail inbox — agent main, preset gog-gmail")

    rotated = run_cli(["webhooks", "rotate", "gmail-inbox", "--grace", "60", "--json"], env)
    new = WebhookSecretResult.model_validate(json.loads(rotated.stdout))
    assert new.secret != secret and new.webhook.previous_secret_expires_at
    stored = rows(path)["gmail-inbox"]
    assert secrets.secret_matches(secret, [stored["previous_secret_hash"]])
    assert secrets.secret_matches(new.secret, [stored["secret_hash"]])

    deliveries = run_cli(["webhooks", "deliveries", "gmail-inbox", "--json"], env)
    assert [DeliveryResult.model_validate(d) for d in json.loads(deliveries.stdout)] == []

    removed = run_cli(["webhooks", "remove", "gmail-inbox"], env)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert rows(path) == {}


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--name", "x", "--agent", "nobody"], ["--agent: no agent 'nobody'"]),
        (["--name", "x", "--agent", "main", "--allow", "nope"], ["--allow: 'nope' is not an IP"]),
        (["--name", "x", "--agent", "main", "--id", "Bad Id"], ["--id:"]),
        (["--name", "x", "--agent", "main", "--rate-limit", "0"], ["--rate-limit:"]),
        (["--name", "x", "--agent", "main", "--session", "agent:main:nope"], ["--session:"]),
    ],
)
def test_add_refuses_bad_input_in_one_line_and_saves_nothing(state, flags, needles):
    path, env = state
    result = run_cli(["webhooks", "add", *flags], env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wingman: invalid webhook: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == "" and rows(path) == {}


@pytest.mark.parametrize("command", ["remove", "rotate", "test", "deliveries"])
def test_an_unknown_webhook_is_one_line_exit_1(state, command):
    _, env = state
    result = run_cli(["webhooks", command, "nope"], env)
    assert result.returncode == 1
    assert result.stderr.strip() == "wingman: no webhook 'nope'"


def test_test_says_when_the_gateway_cannot_be_reached(state):
    _, env = state
    run_cli(["webhooks", "add", "--name", "CI", "--agent", "main", "--id", "ci"], env)
    try:
        result = run_cli(["webhooks", "test", "ci", "--url", "http://127.0.0.1:9"], env)
        assert result.returncode == 1
        assert result.stderr.startswith("wingman: cannot reach http://127.0.0.1:9/webhooks/ci")
        assert "Traceback" not in result.stderr
    finally:
        run_cli(["webhooks", "remove", "ci"], env)
