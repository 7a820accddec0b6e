"""``wingman gateway bench`` end to end: a real gateway, a real bench run, every figure.

Functional only: nothing here asserts how fast anything is. A few pure helpers are
checked directly at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.bench.client import BenchError, Endpoint
from gateway.bench.report import percentile
from tests.conftest import REDIS_URL, require_redis
from tests.gateway.gateway_process import TOKEN, GatewayProcess, gateway_env

FIGURES = {
    "connect_wall_s",
    "connect_p50_ms",
    "connect_p99_ms",
    "ping_p50_ms",
    "ping_p99_ms",
    "fanout_p50_ms",
    "fanout_p99_ms",
    "deliveries_per_s",
    "rss_mb",
}
BENCH_TIMEOUT = 90


def _bench(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m wingman gateway bench ARGS`` in a clean environment (no configured token)."""
    return subprocess.run(
        [sys.executable, "-m", "wingman", "gateway", "bench", *args],
        capture_output=True,
        text=True,
        env=gateway_env(state_dir, {"WINGMAN_GATEWAY_TOKEN": None}),
        timeout=BENCH_TIMEOUT,
        check=False,
    )


def _last_json_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON object in the output:\n{stdout}"
    return json.loads(lines[-1])


@pytest.mark.e2e
@pytest.mark.parametrize("hello", ["snapshot", "small"])
def test_bench_measures_gateway_and_baseline(
    gateway: GatewayProcess, tmp_path: Path, hello: str
) -> None:
    assert gateway.proc is not None
    pid = str(gateway.proc.pid)
    result = _bench(
        tmp_path / "bench",
        *("--url", gateway.url, "--token", TOKEN, "--pid", pid, "--json"),
        *("-n", "20", "--pings", "20", "--broadcasts", "3", "--baseline-hello", hello),
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"

    report = _last_json_line(result.stdout)
    assert report["baseline_hello"] == hello
    assert set(report["figures"]) == FIGURES
    for key, figure in report["figures"].items():
        for side in ("gateway", "baseline", "ratio"):
            value = figure[side]
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, side)
            assert value >= 0, (key, side, value)
    for side in ("gateway", "baseline"):
        run = report["runs"][side]
        assert run["connected"] == 20 and run["failed"] == 0, run
        assert run["pings"] == 20, run
        assert run["fanout_samples"] == 3 * 20 and run["missed_deliveries"] == 0, run
    assert set(report["targets"]) == {"fanout_p99_ms", "connect_wall_ratio", "rss_mb"}
    assert all(isinstance(t["pass"], bool) for t in report["targets"].values())
    assert "fan-out p99" in result.stdout and "baseline" in result.stdout


@pytest.mark.e2e
def test_agent_stream_bench_measures_both_paths(gateway: GatewayProcess, tmp_path: Path) -> None:
    result = _bench(
        tmp_path / "bench",
        *("--mode", "agent-stream", "--url", gateway.url, "--token", TOKEN, "--json"),
        *("--chunks", "300", "--rounds", "2"),
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"

    report = _last_json_line(result.stdout)
    assert report["mode"] == "agent-stream" and report["chunks"] == 300
    assert len(report["rounds"]) == 2
    for run in [*report["rounds"], report]:
        for side in ("gateway", "in_process"):
            figures = run[side]
            # every stamped chunk arrived on both paths
            assert figures["chunks"] == 300, (side, figures)
            assert figures["chunks_per_s"] > 0 and figures["latency_p99_ms"] > 0, figures
            assert figures["latency_p50_ms"] <= figures["latency_p99_ms"], figures
        assert run["rate_ratio"] > 0, run
    ratios = [r["rate_ratio"] for r in report["rounds"]]
    assert min(ratios) <= report["rate_ratio"] <= max(ratios)  # the median
    assert set(report["targets"]) == {"added_p99_under_2ms", "rate_at_least_half"}
    assert all(isinstance(v, bool) for v in report["targets"].values())
    assert "median" in result.stdout and "in-process chunk rate" in result.stdout


@pytest.mark.e2e
def test_bench_fails_cleanly_on_a_wrong_token(gateway: GatewayProcess, tmp_path: Path) -> None:
    result = _bench(tmp_path / "bench", "--url", gateway.url, "--token", "wrong", "-n", "5")
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("wingman:")]
    assert len(errors) == 1 and "connect refused" in errors[0], result.stderr
    assert "UNAUTHORIZED" in errors[0]
    assert result.stdout == ""


def test_percentile_is_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    "url", ["wss://127.0.0.1:1/", "ws://10.0.0.1:18789/", "ws://example.com/", "http://127.0.0.1/"]
)
def test_bench_only_targets_a_local_plain_ws_gateway(url: str) -> None:
    with pytest.raises(BenchError):
        Endpoint.parse(url)


def test_endpoint_accepts_loopback() -> None:
    ep = Endpoint.parse("ws://localhost:18789/ws", token="t")
    assert (ep.host, ep.port, ep.token) == ("localhost", 18789, "t")
    assert Endpoint.parse("ws://[::1]:9/").host == "::1"


@pytest.mark.e2e
@pytest.mark.redis
def test_agent_stream_bench_measures_a_scaled_setup_beside(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    """``--scaled`` starts a gateway and a Celery worker on Redis (runs in the worker),
    measures both setups in the same rounds, then stops them and deletes their keys."""
    require_redis()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    result = _bench(
        tmp_path / "bench",
        *("--mode", "agent-stream", "--url", gateway.url, "--token", TOKEN, "--json"),
        *("--chunks", "200", "--rounds", "1", "--streams", "2", "--scaled"),
        *("--redis-url", REDIS_URL, "--workers", "2"),
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"

    report = _last_json_line(result.stdout)
    assert report["streams"] == 2
    scaled = report["scaled"]
    assert scaled["pool"] == "threads" and scaled["concurrency"] == 2
    assert scaled["worker_rss_mb"] > 0
    assert set(scaled["targets"]) == {"added_p99_under_5ms", "rate_at_least_half"}
    for figures in (scaled["gateway"], report["rounds"][0]["scaled"]["gateway"]):
        assert figures["chunks"] == 2 * 200, figures  # every chunk of both runs arrived
    assert "the scaled setup (run in a worker)" in result.stdout
    assert not list(client.scan_iter(match="*wmbench-*")), "the setup's keys were deleted"
