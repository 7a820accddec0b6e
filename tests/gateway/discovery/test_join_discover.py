"""``wingman gateway join --auto-discover`` for real, inside a network namespace this test
creates (no multicast packet leaves the machine): a gateway announces itself over mDNS, the
join process finds it, registers and joins its group, and a message it types reaches another
node; without a token it stops with a clear message; with no gateway it says so (exit 3)."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.gateway.gateway_process import TOKEN, gateway_env, run_cli, wingman_command
from tests.gateway.netns import NetnsGateway, netns_exec
from tests.rooms.e2e import JoinProcess, broadcast_reaches, direct_reaches

pytestmark = pytest.mark.e2e


async def test_join_auto_discover_finds_the_gateway_registers_and_relays(netns, tmp_path):
    name = f"lan-gw-{uuid.uuid4().hex[:6]}"
    gw = NetnsGateway(
        tmp_path / "gw",
        env={"WINGMAN_GATEWAY_NAME": name},
        args=["--discovery", "mdns"],
        netns=netns,
    )
    inside = netns_exec(netns, [])
    found = other = None
    try:
        gw.start()
        url = f"ws://127.0.0.1:{gw.port}/ws"
        # auth required and no token: a clear message, no connection attempt
        anonymous = gateway_env(tmp_path / "cli", {"WINGMAN_GATEWAY_TOKEN": None})
        refused = run_cli(
            ["gateway", "join", "--auto-discover", "--name", "anon"],
            anonymous,
            cmd=netns_exec(netns, wingman_command()),
        )
        assert refused.returncode == 1, (refused.stdout, refused.stderr)
        assert f"discovered gateway {name} at {url} (auth required (token))" in refused.stdout
        assert f"gateway {name} at {url} requires auth (token): pass --token" in refused.stderr

        args = ["--auto-discover", "--timeout", "5000", "--name", "found", "--group", "lan"]
        found = JoinProcess([*args, "--token", TOKEN], anonymous, prefix=inside)
        await found.expect(f"discovered gateway {name} at {url} (auth required (token))")
        await found.expect(f"connected to {url} over WebSocket")
        await found.joined("found", "lan")

        # another node, by URL, in the same group: what one types reaches the other
        other = JoinProcess([url, "--name", "other", "--group", "lan"], gw.env, prefix=inside)
        await other.joined("other", "lan")
        await broadcast_reaches(found, other, "hello from a discovered gateway")
        await direct_reaches(other, found, "found you")
    finally:
        for node in (found, other):
            if node is not None:
                node.stop()
        gw.stop()


def test_join_auto_discover_without_a_gateway_fails_within_the_timeout(netns, tmp_path):
    started = time.monotonic()
    result = run_cli(
        ["gateway", "join", "--auto-discover", "--timeout", "1000"],
        gateway_env(tmp_path),
        cmd=netns_exec(netns, wingman_command()),
    )
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "no gateway found over mDNS within 1000 ms" in result.stderr
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    "args",
    [[], ["ws://127.0.0.1:9/ws", "--auto-discover"]],
    ids=["neither", "both"],
)
def test_join_needs_a_url_or_auto_discover_but_not_both(tmp_path, args):
    result = run_cli(["gateway", "join", *args], gateway_env(tmp_path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "give the gateway's URL or --auto-discover (one of them)" in result.stderr
