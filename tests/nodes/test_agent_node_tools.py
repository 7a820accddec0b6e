"""Agents use nodes as tools: ``node:<node>:<command>`` in an agent's tools becomes a tool
the model can call (here the offline model's ``/tool``); the call is a node.invoke, shown by
tool-start / tool-end, and a node's refusal reaches the model as a tool error."""

from __future__ import annotations

import json

import pytest

from agents.runtime.toolnames import is_known
from tests.agents.conftest import acreate_agent, agent_call
from tests.agents.conftest import hub_cleanup as hub_cleanup  # a fixture
from tests.nodes.conftest import answer_invokes
from tests.nodes.test_invoke import approved_node

pytestmark = pytest.mark.django_db(transaction=True)


def test_node_tool_names_are_known_to_agent_config() -> None:
    assert is_known("node:build-box:system.run")
    assert is_known("node:8a0c:*")
    assert not is_known("shell")


async def test_agent_calls_a_node_command_through_a_node_tool(clients, token_auth, hub_cleanup):
    op, node, dev = await approved_node(clients, commands=["system.which", "system.run"])
    await acreate_agent("ops", tools=[f"node:{dev.device_id}:*"])
    calls = []

    def reply(req):
        calls.append(req)
        params = json.loads(req["paramsJSON"])
        if req["command"] == "system.which":
            return {
                "ok": True,
                "payloadJSON": json.dumps({"bins": {b: f"/bin/{b}" for b in params["bins"]}}),
            }
        return {
            "ok": False,
            "error": {"code": "SYSTEM_RUN_DENIED", "message": "SYSTEM_RUN_DENIED: allowlist miss"},
        }

    task = await answer_invokes(node, reply)
    try:
        prompt = '/tool node_test-node_system_which {"params": {"bins": ["uname"]}}'
        ack, events, _final, _ = await agent_call(
            op, {"agentId": "ops", "message": prompt, "sessionKey": "agent:ops:t1"}
        )
        assert ack["ok"], ack
        types = [e["type"] for e in events]
        assert "tool-start" in types and "tool-end" in types, types
        start = next(e for e in events if e["type"] == "tool-start")
        assert start["toolName"] == "node_test-node_system_which"
        end = next(e for e in events if e["type"] == "tool-end")
        assert json.loads(end["toolOutput"]) == {"bins": {"uname": "/bin/uname"}}, end
        assert events[-1]["type"] == "agent-complete", events[-1]
        assert calls[0]["command"] == "system.which" and calls[0]["nodeId"] == dev.device_id
        # a refusal on the node is a tool error the model sees, not a crash
        prompt = '/tool node_test-node_system_run {"params": {"command": ["rm", "-rf", "/"]}}'
        ack, events, _final, _ = await agent_call(
            op, {"agentId": "ops", "message": prompt, "sessionKey": "agent:ops:t2"}
        )
        end = next(e for e in events if e["type"] == "tool-end")
        assert "SYSTEM_RUN_DENIED" in str(end["toolOutput"]), end
        assert events[-1]["type"] == "agent-complete", events[-1]
    finally:
        task.cancel()
