"""End to end with the real, unmodified OpenClaw node host: it connects (signed device),
its surface is pending, an operator approves it, node.invoke ``system.which`` and
``system.run echo hi`` return its real answers, and an agent run calls ``system.run`` on it
through a node tool."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.agents.test_e2e_agents import run_agent, write_agents_config
from tests.gateway.gateway_process import TOKEN, GatewayFactory, connect_params, ws_client
from tests.nodes.openclaw_node import NodeHost, require_openclaw

pytestmark = [pytest.mark.e2e]

NAME = "e2e-node"
OPERATOR = ["operator.read", "operator.write", "operator.admin", "operator.pairing"]


async def until(check, timeout: float, what: str, host: NodeHost):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout} s; node host output:\n{host.output()}")


async def test_real_openclaw_node_host(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    require_openclaw()
    agents = [
        {"id": "main", "default": True, "model": "wingman:echo"},
        {"id": "ops", "model": "wingman:echo", "tools": [f"node:{NAME}:system.run"]},
    ]
    write_agents_config(tmp_path / "gw", agents)
    gw = gateway_factory(name="gw", state_dir=tmp_path / "gw")
    host = NodeHost(tmp_path / "home", gw.port, token=TOKEN, name=NAME)
    try:
        async with ws_client(gw.url, name="operator") as op:
            await op.handshake(connect_params() | {"scopes": OPERATOR})

            async def pending():
                rows = (await op.ok("node.pair.list", {}))["pending"]
                return [r for r in rows if r["displayName"] == NAME]

            (request,) = await until(pending, 60, "the node host's pending surface", host)
            node_id = request["nodeId"]
            assert "system.run" in request["commands"] and "system.which" in request["commands"]
            row = await op.ok("node.describe", {"nodeId": node_id})
            assert row["approvalState"] == "pending-approval" and row["connected"], row
            err = await op.error(
                "node.invoke",
                {"nodeId": node_id, "command": "system.which", "params": {"bins": ["sh"]}},
            )
            assert "pending approval" in err["message"], err
            await op.ok("node.pair.approve", {"requestId": request["requestId"]})

            which = await op.ok(
                "node.invoke",
                {
                    "nodeId": node_id,
                    "command": "system.which",
                    "params": {"bins": ["sh"]},
                    "timeoutMs": 15000,
                    "idempotencyKey": "w1",
                },
            )
            assert which["ok"] is True and which["payload"]["bins"]["sh"].endswith("/sh"), which
            run = await op.ok(
                "node.invoke",
                {
                    "nodeId": node_id,
                    "command": "system.run",
                    "params": {"command": ["echo", "hi"]},
                    "timeoutMs": 15000,
                    "idempotencyKey": "r1",
                },
            )
            payload = run["payload"]
            assert payload["exitCode"] == 0 and payload["stdout"] == "hi\n", run
            assert json.loads(run["payloadJSON"]) == payload

            tool = f"node_{NAME}_system_run"
            prompt = "/tool " + tool + ' {"params": {"command": ["echo", "from-agent"]}}'
            _, final, events = await run_agent(
                op, {"agentId": "ops", "message": prompt, "sessionKey": "agent:ops:e2e"}
            )
            start = next(e for e in events if e["type"] == "tool-start")
            end = next(e for e in events if e["type"] == "tool-end")
            assert start["toolName"] == tool, start
            assert json.loads(end["toolOutput"])["stdout"] == "from-agent\n", end
            assert events[-1]["type"] == "agent-complete", events[-1]
            assert final["status"] == "ok", final
            health = await op.ok("status", {})
            assert health["presenceCount"] >= 2
    finally:
        host.stop()
