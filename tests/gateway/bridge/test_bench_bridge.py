"""``wingman gateway bench --mode bridge`` against a real gateway: every client of the three
transports gets every round's event, and the report carries p50/p99 and the verdicts."""

from __future__ import annotations

import json

import pytest

from tests.gateway.gateway_process import GatewayProcess, gateway_env, run_cli

pytestmark = pytest.mark.e2e


def test_bridge_bench_measures_poll_sse_and_websocket(gateway: GatewayProcess) -> None:
    env = gateway_env(gateway.state_dir, {"WINGMAN_PORT": str(gateway.port)})
    done = run_cli(
        ["gateway", "bench", "--mode", "bridge", "--clients", "5", "--broadcasts", "3", "--json"],
        env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["mode"], report["clients"], report["rounds"]) == ("bridge", 5, 3)
    for transport in ("poll", "sse", "websocket"):
        figures = report[transport]
        assert figures["deliveries"] == 15 and figures["missed"] == 0, report
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] < 10_000, report
    assert isinstance(report["poll_p99_under_100ms"], bool)
    assert "bridge bench: 5 clients per transport, 3 rounds" in done.stdout
