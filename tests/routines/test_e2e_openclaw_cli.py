"""The real, unmodified OpenClaw CLI (npm ``openclaw``, installed by tests/run.sh) manages
routines on a real gateway: ``cron add|status|list|edit|disable|enable|run|runs|show|rm``,
each its own WebSocket as the CLI does, and its own "not found" for an unknown id."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.gateway.gateway_process import TOKEN, GatewayFactory
from tests.nodes.openclaw_node import openclaw_cli, require_openclaw

pytestmark = [pytest.mark.e2e]


async def cron(home: Path, url: str, *args: str, json_out: bool = True) -> object:
    """``openclaw cron <args> --url --token [--json]``: its JSON output (or text), exit 0."""
    argv = ["cron", *args, "--url", url, "--token", TOKEN, *(["--json"] if json_out else [])]
    done = await asyncio.to_thread(openclaw_cli, home, *argv)
    assert done.returncode == 0, f"openclaw cron {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return json.loads(done.stdout) if json_out else done.stdout


async def test_the_real_openclaw_cli_manages_routines(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    require_openclaw()
    gw = gateway_factory(name="gw", state_dir=tmp_path / "gw")
    url, home = f"ws://127.0.0.1:{gw.port}", tmp_path / "cli"
    added = await cron(
        home,
        url,
        *("add", "--name", "weekday-standup", "--cron", "0 9 * * 1-5", "--tz", "Europe/Berlin"),
        *("--message", "/stream 3", "--agent", "main", "--session", "isolated", "--no-deliver"),
    )
    job = added["id"]
    assert added["schedule"] == {"kind": "cron", "expr": "0 9 * * 1-5", "tz": "Europe/Berlin"}
    assert added["sessionKey"] == f"agent:main:routine:{job}"
    assert added["state"]["nextRunAtMs"] > time.time() * 1000
    status = await cron(home, url, "status")
    assert status["enabled"] is True and status["jobs"] == 1
    page = await cron(home, url, "list")
    assert [j["id"] for j in page["jobs"]] == [job] and page["total"] == 1
    edited = await cron(home, url, "edit", job, "--message", "/stream 2", "--tz", "UTC")
    assert edited["payload"]["message"] == "/stream 2" and edited["schedule"]["tz"] == "UTC"
    assert (await cron(home, url, "disable", job))["enabled"] is False
    assert (await cron(home, url, "enable", job))["enabled"] is True
    ran = await cron(home, url, "run", job, json_out=False)
    assert '"enqueued": true' in ran, ran
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        entries = (await cron(home, url, "runs", "--id", job))["entries"]
        if entries and entries[0]["status"] == "ok":
            break
        await asyncio.sleep(0.5)
    assert entries and entries[0]["status"] == "ok", entries
    assert entries[0]["sessionKey"] == f"agent:main:routine:{job}"
    missing = await asyncio.to_thread(
        openclaw_cli, home, "cron", "show", "nosuch", "--url", url, "--token", TOKEN
    )
    assert "not found" in (missing.stdout + missing.stderr).lower(), missing
    assert (await cron(home, url, "rm", job)) == {"ok": True, "removed": True}
    assert (await cron(home, url, "list"))["jobs"] == []
