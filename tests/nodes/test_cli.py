"""``wingman nodes ...`` and ``wingman devices ...`` as a user runs them: the real CLI in a
subprocess against a real gateway process, with a node connection that signs like the
OpenClaw node host and answers ``system.which``."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.gateway.gateway_process import TOKEN, GatewayProcess, gateway_env, run_cli, ws_client
from tests.nodes.conftest import serve_invokes
from tests.nodes.signer import TestDevice

pytestmark = pytest.mark.e2e


async def cli(gw: GatewayProcess, tmp_path, *args: str):
    """The CLI from another state dir, pointed at the gateway with --url/--token."""
    env = gateway_env(tmp_path / "cli-state")
    argv = [*args, "--url", f"{gw.url}ws", "--token", TOKEN]
    return await asyncio.to_thread(run_cli, argv, env)


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def failed(result) -> str:
    """The one stderr line of a failed command."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


async def test_pending_approve_list_invoke_and_errors(gateway, tmp_path):
    dev = TestDevice()
    async with ws_client(gateway.url, name="node") as node:
        commands = ["system.which", "test.never"]
        await node.send(dev.connect(node.challenge, commands=commands, display_name="build-box"))
        while (res := await node.recv()).get("type") != "res":
            pass
        assert res["ok"], res
        server = asyncio.ensure_future(serve_invokes(node, dev.device_id, silent={"test.never"}))
        try:
            await _pair_and_invoke(gateway, tmp_path, dev)
        finally:
            server.cancel()


async def _pair_and_invoke(gw: GatewayProcess, tmp_path, dev: TestDevice) -> None:
    (pending,) = json.loads(ok(await cli(gw, tmp_path, "nodes", "pending", "--json")))
    assert pending["nodeId"] == dev.device_id and pending["displayName"] == "build-box"
    approved = ok(await cli(gw, tmp_path, "nodes", "approve", pending["requestId"]))
    assert approved.strip() == "Approved build-box: system.which, test.never"
    listed = ok(await cli(gw, tmp_path, "nodes", "list"))
    assert listed.strip() == (
        f"{dev.device_id[:16]}  build-box [approved, connected] — system.which, test.never"
    )
    params = '{"bins": ["uname"]}'
    answer = ok(
        await cli(gw, tmp_path, "nodes", "invoke", "build-box", "system.which", "--params", params)
    )
    assert json.loads(answer) == {"bins": {"uname": "/usr/bin/uname"}}
    # by id prefix, --json: the whole node.invoke result
    result = json.loads(
        ok(
            await cli(
                gw,
                tmp_path,
                "nodes",
                "invoke",
                dev.device_id[:10],
                "system.which",
                "--params",
                '{"bins": ["git"]}',
                "--json",
            )
        )
    )
    assert result["ok"] is True and result["nodeId"] == dev.device_id
    assert result["payload"] == {"bins": {"git": "/usr/bin/git"}}
    denied, late, unknown, away = await asyncio.gather(
        cli(gw, tmp_path, "nodes", "invoke", "build-box", "system.run", "--params", "{}"),
        cli(gw, tmp_path, "nodes", "invoke", "build-box", "test.never", "--timeout", "300"),
        cli(gw, tmp_path, "nodes", "invoke", "nope", "system.which"),
        asyncio.to_thread(
            run_cli,
            ["nodes", "list", "--url", "ws://127.0.0.1:9/ws"],
            gateway_env(tmp_path / "cli-state"),
        ),
    )
    assert failed(denied) == "wingman: INVALID_REQUEST: node command not allowed: system.run"
    assert failed(late) == "wingman: UNAVAILABLE: TIMEOUT: node invoke timed out after 300 ms"
    assert failed(unknown) == "wingman: unknown node 'nope' (see: wingman nodes list)"
    assert failed(away).startswith("wingman: cannot reach the gateway at ws://127.0.0.1:9/ws")


async def test_devices_list_and_revoke(gateway, tmp_path):
    dev = TestDevice()
    async with ws_client(gateway.url, name="node") as node:
        await node.send(dev.connect(node.challenge, display_name="laptop"))
        while (res := await node.recv()).get("type") != "res":
            pass
        assert res["ok"] and res["payload"]["auth"]["deviceToken"], res
    listed = ok(await cli(gateway, tmp_path, "devices", "list"))
    assert listed.startswith(f"{dev.device_id[:16]}  laptop [node, token] node at 127.0.0.1"), (
        listed
    )
    revoked = ok(await cli(gateway, tmp_path, "devices", "revoke", "laptop"))
    assert revoked.strip() == f"Revoked the token of {dev.device_id}"
    (row,) = json.loads(ok(await cli(gateway, tmp_path, "devices", "list", "--json")))
    assert row["deviceId"] == dev.device_id and row["hasToken"] is False
    assert "token" not in {k.lower() for k in row}
