"""The project's clients fall back to the HTTP bridge by themselves when a proxy refuses the
WebSocket upgrade: GatewayClient (auto), ``wingman agent`` and ``wingman gateway join``
(the wingman-node dialect over the bridge, relaying to and from a WebSocket node);
``--transport websocket`` does not, ``--transport http`` uses the bridge from the start."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.gateway.bridge.proxy import NoUpgradeProxy
from tests.gateway.gateway_process import TOKEN, GatewayProcess, gateway_env, run_cli
from tests.rooms.e2e import JoinProcess, broadcast_reaches, direct_reaches
from wingman.client import GatewayClient

pytestmark = pytest.mark.e2e


async def test_gateway_client_falls_back_when_the_upgrade_is_refused(
    gateway: GatewayProcess,
) -> None:
    with NoUpgradeProxy(gateway.port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/ws"
        async with GatewayClient(url, token=TOKEN) as gw:
            assert gw.transport_used == "http"
            assert proxy.refused == 1
            assert (await gw.call("health"))["ok"] is True
            events: list[dict] = []
            final = await gw.agent("through the proxy", agent_id="main", on_event=events.append)
            assert final["result"]["text"] == "You said: through the proxy", final
            kinds = [e["type"] for e in events]
            assert kinds[0] == "agent-start" and kinds[-1] == "agent-complete", kinds
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await GatewayClient(url, token=TOKEN, transport="websocket").connect()


async def test_gateway_client_uses_websocket_when_it_can_and_http_when_told(
    gateway: GatewayProcess,
) -> None:
    async with GatewayClient(gateway.url, token=TOKEN) as gw:
        assert gw.transport_used == "websocket"
    async with GatewayClient(gateway.url, token=TOKEN, transport="http") as gw:
        assert gw.transport_used == "http"
        assert (await gw.call("health"))["ok"] is True


async def test_closing_a_bridge_client_removes_its_presence(gateway: GatewayProcess) -> None:
    async with GatewayClient(gateway.url, token=TOKEN, transport="http") as gw:
        me = gw.client["instanceId"]
        async with GatewayClient(gateway.url, token=TOKEN) as watcher:
            listed = (await watcher.call("system-presence"))["presence"]
            assert me in {e.get("instanceId") for e in listed}, listed
    async with GatewayClient(gateway.url, token=TOKEN) as watcher:
        for _ in range(50):
            listed = (await watcher.call("system-presence"))["presence"]
            if me not in {e.get("instanceId") for e in listed}:
                break
            await asyncio.sleep(0.1)
        assert me not in {e.get("instanceId") for e in listed}, listed


def test_wingman_agent_falls_back_and_transport_flag_is_honoured(gateway: GatewayProcess) -> None:
    env = gateway_env(gateway.state_dir, {"WINGMAN_PORT": str(gateway.port)})
    with NoUpgradeProxy(gateway.port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/ws"
        done = run_cli(["agent", "hello bridge", "--gateway", url, "--token", TOKEN], env)
        assert done.returncode == 0, done.stderr
        assert "You said: hello bridge" in done.stdout, done.stdout
        assert "HTTP Request" not in done.stderr, done.stderr  # no line per bridge poll
        refused = run_cli(
            ["agent", "hi", "--gateway", url, "--token", TOKEN, "--transport", "websocket"], env
        )
        assert refused.returncode != 0
        assert "403" in refused.stderr, refused.stderr
        assert proxy.refused == 2


async def relay_between(bridged: JoinProcess, url: str, direct: JoinProcess) -> None:
    """``bridged`` connected over the bridge, ``direct`` over WebSocket, both in ``swarm``:
    a broadcast each way and a direct message reach the other node."""
    await bridged.expect(f"connected to {url} over the HTTP bridge")
    await bridged.joined("bridged", "swarm")
    await direct.expect("over WebSocket")
    await direct.joined("direct", "swarm")
    await broadcast_reaches(bridged, direct, "hello over the bridge")
    await broadcast_reaches(direct, bridged, "hello back over a websocket")
    await direct_reaches(direct, bridged, "just for you")


async def test_join_auto_transport_falls_back_and_relays(gateway: GatewayProcess) -> None:
    env = dict(gateway.env)
    with NoUpgradeProxy(gateway.port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/ws"
        bridged = JoinProcess(
            [url, "--name", "bridged", "--group", "swarm", "--auto-transport"], env
        )
        direct = JoinProcess([gateway.url, "--name", "direct", "--group", "swarm"], env)
        ws_only = JoinProcess([url, "--name", "ws-only", "--transport", "websocket"], env)
        try:
            await relay_between(bridged, url, direct)
            got = await ws_only.expect("connection failed: ")
            assert "403" in got, got
            assert proxy.refused >= 2 and proxy.passed >= 1
        finally:
            for node in (bridged, direct, ws_only):
                node.stop()


async def test_join_transport_http_uses_the_bridge_and_relays(gateway: GatewayProcess) -> None:
    env = dict(gateway.env)
    args = ["--group", "swarm", "--transport"]
    bridged = JoinProcess([gateway.url, "--name", "bridged", *args, "http"], env)
    direct = JoinProcess([gateway.url, "--name", "direct", *args, "websocket"], env)
    try:
        await relay_between(bridged, gateway.url, direct)
    finally:
        bridged.stop()
        direct.stop()
