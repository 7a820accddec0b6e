"""The real OpenClaw CLI manages a real node host through Wingman: ``gateway probe`` reports
healthy and not degraded, ``nodes pending|approve|list|describe|invoke`` work."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.gateway.gateway_process import TOKEN, GatewayFactory
from tests.nodes.openclaw_node import NodeHost, openclaw_cli, require_openclaw

pytestmark = [pytest.mark.e2e]


async def cli(home: Path, url: str, *args: str) -> object:
    """``openclaw <args> --url <url> --token T --json``: its JSON output (exit code 0)."""
    argv = [*args, "--url", url, "--token", TOKEN, "--json"]
    done = await asyncio.to_thread(openclaw_cli, home, *argv)
    assert done.returncode == 0, (
        f"openclaw {' '.join(args)}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    return json.loads(done.stdout)


async def test_openclaw_cli_probe_and_nodes(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    require_openclaw()
    gw = gateway_factory(name="gw", state_dir=tmp_path / "gw")
    url = f"ws://127.0.0.1:{gw.port}"
    home = tmp_path / "cli"
    probe = await cli(home, url, "gateway", "probe")
    assert probe["ok"] is True and probe["degraded"] is False, probe
    (explicit,) = [t for t in probe["targets"] if t["id"] == "explicit"]
    assert explicit["connect"]["rpcOk"] is True and explicit["config"]["valid"] is True, explicit

    host = NodeHost(tmp_path / "home", gw.port, token=TOKEN, name="cli-node")
    try:
        deadline = time.monotonic() + 60
        pending = []
        while not pending and time.monotonic() < deadline:
            pending = [
                p
                for p in await cli(home, url, "nodes", "pending")
                if p["displayName"] == "cli-node"
            ]
            if not pending:
                await asyncio.sleep(1)
        assert pending, f"the node host never appeared pending:\n{host.output()}"
        (request,) = pending
        approved = await cli(home, url, "nodes", "approve", request["requestId"])
        assert approved["node"]["nodeId"] == request["nodeId"], approved
        listed = await cli(home, url, "nodes", "list")
        (row,) = [n for n in listed["paired"] if n["nodeId"] == request["nodeId"]]
        assert row["connected"] is True, row
        described = await cli(home, url, "nodes", "describe", "--node", "cli-node")
        assert described["approvalState"] == "approved" and "system.which" in described["commands"]
        which = await cli(
            home,
            url,
            "nodes",
            "invoke",
            "--node",
            "cli-node",
            "--command",
            "system.which",
            "--params",
            '{"bins":["sh"]}',
        )
        assert which["ok"] is True and which["payload"]["bins"]["sh"].endswith("/sh"), which
    finally:
        host.stop()
