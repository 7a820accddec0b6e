"""``wingman nodes ...`` and ``wingman devices ...`` as a user runs them: the real CLI in a
subprocess against a real gateway process, with a node connection that signs like the
OpenClaw node host and answers ``system.which``, and with the real OpenClaw node host."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.gateway.gateway_process import TOKEN, GatewayProcess, gateway_env, run_cli, ws_client
from tests.nodes.conftest import serve_invokes
from tests.nodes.openclaw_node import NodeHost, require_openclaw
from tests.nodes.signer import TestDevice

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway for the module (each test brings its own node device)."""
    gateway = GatewayProcess(tmp_path_factory.mktemp("nodes-cli"), name="nodes-cli").start()
    yield gateway
    gateway.stop()


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


@contextlib.asynccontextmanager
async def node_connected(gw: GatewayProcess, dev: TestDevice, **kw) -> AsyncIterator:
    """A node connection of ``dev`` (signed like the node host) that answers system.which
    and never ``test.never``."""
    async with ws_client(gw.url, name="node") as node:
        await node.send(dev.connect(node.challenge, **kw))
        while (res := await node.recv()).get("type") != "res":
            pass
        assert res["ok"], res
        server = asyncio.ensure_future(serve_invokes(node, dev.device_id, silent={"test.never"}))
        try:
            yield res["payload"]
        finally:
            server.cancel()


async def test_pending_approve_list_invoke_and_errors(gw, tmp_path):
    dev = TestDevice()
    commands = ["system.which", "test.never"]
    async with node_connected(gw, dev, commands=commands, display_name="build-box"):
        await _pair_and_invoke(gw, tmp_path, dev)


async def _pair_and_invoke(gw: GatewayProcess, tmp_path, dev: TestDevice) -> None:
    (pending,) = [
        p
        for p in json.loads(ok(await cli(gw, tmp_path, "nodes", "pending", "--json")))
        if p["nodeId"] == dev.device_id
    ]
    assert pending["displayName"] == "build-box"
    approved = ok(await cli(gw, tmp_path, "nodes", "approve", pending["requestId"]))
    assert approved.strip() == "Approved build-box: system.which, test.never"
    listed = ok(await cli(gw, tmp_path, "nodes", "list"))
    line = f"{dev.device_id[:16]}  build-box [approved, connected] — system.which, test.never"
    assert line in listed.splitlines(), listed
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


async def test_reject_rename_describe_remove(gw, tmp_path):
    dev = TestDevice()
    async with node_connected(gw, dev, commands=["system.which"], display_name="spare"):
        pending = json.loads(ok(await cli(gw, tmp_path, "nodes", "pending", "--json")))
        (request,) = [p["requestId"] for p in pending if p["nodeId"] == dev.device_id]
        rejected = ok(await cli(gw, tmp_path, "nodes", "reject", request))
        assert rejected.strip() == f"Rejected request {request} of node {dev.device_id}"
        again = await cli(gw, tmp_path, "nodes", "approve", request)
        assert failed(again) == "wingman: INVALID_REQUEST: unknown requestId"
        renamed = ok(await cli(gw, tmp_path, "nodes", "rename", "spare", "spare box"))
        assert renamed.strip() == f"Renamed {dev.device_id} to spare box"
        row = json.loads(ok(await cli(gw, tmp_path, "nodes", "describe", "spare box", "--json")))
        assert row["nodeId"] == dev.device_id and row["displayName"] == "spare box"
        assert row["approvalState"] == "unapproved" and row["connected"] is True
        removed = ok(await cli(gw, tmp_path, "nodes", "remove", dev.device_id[:12]))
        assert removed.strip() == f"Removed node {dev.device_id}"
        listed = json.loads(ok(await cli(gw, tmp_path, "nodes", "list", "--json")))
        assert dev.device_id not in {n["nodeId"] for n in listed}


async def test_devices_list_revoke_rotate(gw, tmp_path):
    dev = TestDevice()
    async with node_connected(gw, dev, display_name="laptop") as hello:
        assert hello["auth"]["deviceToken"]
    listed = ok(await cli(gw, tmp_path, "devices", "list")).splitlines()
    (line,) = [x for x in listed if x.startswith(dev.device_id[:16])]
    assert line.startswith(f"{dev.device_id[:16]}  laptop [node, token] node at 127.0.0.1"), line
    revoked = ok(await cli(gw, tmp_path, "devices", "revoke", "laptop"))
    assert revoked.strip() == f"Revoked the token of {dev.device_id}"
    rows = json.loads(ok(await cli(gw, tmp_path, "devices", "list", "--json")))
    (row,) = [r for r in rows if r["deviceId"] == dev.device_id]
    assert row["hasToken"] is False and "token" not in {k.lower() for k in row}
    rotated = json.loads(ok(await cli(gw, tmp_path, "devices", "rotate", "laptop", "--json")))
    assert rotated["deviceId"] == dev.device_id and len(rotated["token"]) > 20
    # the new token lets the device in instead of the gateway secret
    async with node_connected(gw, dev, token=rotated["token"]) as hello:
        assert hello["auth"]["role"] == "node"


async def test_real_openclaw_node_host_through_the_cli(gw, tmp_path):
    """The unmodified ``openclaw node run`` approved and invoked with ``wingman nodes``."""
    require_openclaw()
    host = NodeHost(tmp_path / "home", gw.port, token=TOKEN, name="cli-node")
    try:
        deadline = time.monotonic() + 60
        while not (request := await _pending_of(gw, tmp_path, "cli-node")):
            assert time.monotonic() < deadline, f"no pending surface; node host:\n{host.output()}"
            await asyncio.sleep(0.5)
        assert "system.run" in request["commands"]
        ok(await cli(gw, tmp_path, "nodes", "approve", request["requestId"]))
        argv = ["nodes", "invoke", "cli-node", "system.run"]
        ran = await cli(gw, tmp_path, *argv, "--params", '{"command": ["echo", "hi"]}')
        assert ok(ran) == "hi\n" and ran.stderr == ""
        failing = await cli(gw, tmp_path, *argv, "--params", '{"command": ["sh", "-c", "exit 3"]}')
        assert failed(failing) == "wingman: the command exited with 3"
    finally:
        host.stop()


async def _pending_of(gw: GatewayProcess, tmp_path, name: str) -> dict | None:
    rows = json.loads(ok(await cli(gw, tmp_path, "nodes", "pending", "--json")))
    return next((r for r in rows if r["displayName"] == name), None)


async def test_devices_pending_approve_reject_remove(gw, tmp_path):
    """A paired node device that asks for the operator role with its device token waits for
    an operator (on loopback too: only the gateway secret pairs silently)."""
    dev = TestDevice()
    async with node_connected(gw, dev, display_name="upgrader") as hello:
        device_token = hello["auth"]["deviceToken"]
    for attempt in ("reject", "approve"):
        async with ws_client(gw.url, name="operator") as op:
            asking = dev.connect(
                op.challenge,
                token=device_token,
                role="operator",
                scopes=["operator.read", "operator.write"],
                display_name="upgrader",
            )
            await op.send(asking)
            while (res := await op.recv()).get("type") != "res":
                pass
        assert res["error"]["details"]["code"] == "PAIRING_REQUIRED", res
        request = res["error"]["details"]["requestId"]
        pending = ok(await cli(gw, tmp_path, "devices", "pending")).splitlines()
        (line,) = [x for x in pending if x.startswith(request)]
        assert line.startswith(f"{request}  upgrader [operator]"), line
        assert line.endswith("from 127.0.0.1"), line
        # the request holds what the device asked for, not what its node token allowed
        rows = json.loads(ok(await cli(gw, tmp_path, "devices", "pending", "--json")))
        (asked,) = [r for r in rows if r["requestId"] == request]
        assert asked["scopes"] == ["operator.read", "operator.write"], asked
        scope = ["--scope", "operator.read"] if attempt == "approve" else []
        decided = ok(await cli(gw, tmp_path, "devices", attempt, request, *scope))
        assert dev.device_id in decided and decided.startswith(attempt.title()), decided
    rows = json.loads(ok(await cli(gw, tmp_path, "devices", "list", "--json")))
    (row,) = [r for r in rows if r["deviceId"] == dev.device_id]
    assert row["role"] == "operator" and row["scopes"] == ["operator.read"], row
    removed = ok(await cli(gw, tmp_path, "devices", "remove", dev.device_id[:12]))
    assert removed.strip() == f"Removed device {dev.device_id}"
    rows = json.loads(ok(await cli(gw, tmp_path, "devices", "list", "--json")))
    assert dev.device_id not in {r["deviceId"] for r in rows}
