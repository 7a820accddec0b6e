"""An operator on gateway A invokes a command on a node connected to gateway B (one Redis,
one PostgreSQL database): the invoke and its result cross the channel layer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.agents.test_e2e_agents import local_cluster, shared_database  # noqa: F401 (fixture)
from tests.gateway.gateway_process import TOKEN, GatewayFactory, connect_params, ws_client
from tests.nodes.conftest import serve_invokes
from tests.nodes.signer import TestDevice

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def two_gateways(gateway_factory: GatewayFactory, shared_database: str, tmp_path: Path):  # noqa: F811
    yield from local_cluster(
        gateway_factory, shared_database, tmp_path, ("A", "B"), prefix="wmnodes"
    )


async def test_operator_on_a_invokes_a_node_on_b(two_gateways) -> None:
    a, b = two_gateways
    dev = TestDevice()
    async with ws_client(b.url, name="node@B") as node, ws_client(a.url, name="op@A") as op:
        await node.send(dev.connect(node.challenge, commands=["system.which"]))
        res = await node.recv()
        while res.get("type") != "res":
            res = await node.recv()
        assert res["ok"], res
        await op.handshake(
            connect_params() | {"scopes": ["operator.read", "operator.write", "operator.pairing"]}
        )
        pending = (await op.ok("node.pair.list", {}))["pending"]
        (request,) = [p for p in pending if p["nodeId"] == dev.device_id]
        await op.ok("node.pair.approve", {"requestId": request["requestId"]})
        await node.next_event("node.pair.resolved")
        server = asyncio.ensure_future(serve_invokes(node, dev.device_id))
        try:
            # A counts the node connected to B: /health and /stats
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"{a.http_url}/health")).json()
                stats = (
                    await http.get(
                        f"{a.http_url}/stats", headers={"Authorization": f"Bearer {TOKEN}"}
                    )
                ).json()
            assert health["stats"]["toolNodes"] == 1 and health["stats"]["totalNodes"] == 2, health
            assert stats["nodes"]["toolNodes"] == 1, stats["nodes"]
            (entry,) = [e for e in stats["nodes"]["nodes"] if e.get("role") == "node"]
            assert entry["deviceId"] == dev.device_id
            row = await op.ok("node.describe", {"nodeId": dev.device_id})
            assert row["connected"] is True and row["commands"] == ["system.which"], row
            for i in range(5):
                result = await op.ok(
                    "node.invoke",
                    {
                        "nodeId": dev.device_id,
                        "command": "system.which",
                        "params": {"bins": [f"tool{i}"]},
                        "timeoutMs": 5000,
                        "idempotencyKey": f"k{i}",
                    },
                )
                assert result["payload"] == {"bins": {f"tool{i}": f"/usr/bin/tool{i}"}}, result
        finally:
            server.cancel()
        # the node leaves B: A's next invoke says so
        await node.ws.close()
        for _ in range(50):
            err = await op.error(
                "node.invoke",
                {"nodeId": dev.device_id, "command": "system.which", "params": {"bins": ["x"]}},
            )
            if err["message"] == "node not connected":
                break
            await asyncio.sleep(0.1)
        assert err == {"code": "UNAVAILABLE", "message": "node not connected"}, err
