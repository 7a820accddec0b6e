"""``wingman gateway bench --mode rooms`` against a real gateway: members join rooms of the
given size, the step's deliveries are counted, and the run removes the rooms it made (a
reused state would otherwise fill ``WINGMAN_ROOMS_MAX`` after a few runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.gateway.gateway_process import TOKEN, GatewayFactory, gateway_env, run_cli

pytestmark = pytest.mark.e2e


def test_rooms_bench_measures_a_step_and_removes_its_rooms(gateway_factory: GatewayFactory):
    gw = gateway_factory({"WINGMAN_RATE_LIMIT": "100000"})
    env = gateway_env(gw.state_dir, {"WINGMAN_PORT": str(gw.port)})
    bench = ["gateway", "bench", "--mode", "rooms", "--url", gw.url, "--token", TOKEN]
    bench += ["-n", "20", "--room-size", "10", "--start-rate", "90", "--max-rate", "90"]
    done = run_cli([*bench, "--step-seconds", "1", "--no-baseline", "--json"], env, timeout=120)
    assert done.returncode in (0, 1), done.stderr  # 1: a target missed, still a report
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (step,) = report["gateway"]["steps"]
    assert step["offered"] == 90 and step["delivered_per_s"] > 0, report
    listed = run_cli(["rooms", "list", "--json", "--token", TOKEN], env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [], "the bench left its rooms behind"


def test_the_cli_does_not_load_the_bench_clients() -> None:
    """Every ``wingman`` command (``gateway run`` too) builds the bench's options: the bench
    clients' imports stay out of it (invoke's cost a gateway ~8 MB of RSS)."""
    code = (
        "import sys, wingman.cli, gateway.bench.cli; print('gateway.bench.invoke' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "the bench's invoke client is imported at startup"


@pytest.mark.parametrize(("connections", "room_size", "gateways"), [(1000, 10, 2), (30, 3, 3)])
def test_every_room_has_members_on_each_gateway(connections, room_size, gateways) -> None:
    """With several gateways (``--url a,b``) a broadcast must cross processes: each room's
    members are spread over the gateways, evenly."""
    from collections import Counter

    from gateway.bench.rooms import gateway_of

    rooms = connections // room_size
    per_room: dict[int, Counter] = {}
    for i in range(connections):
        per_room.setdefault(i % rooms, Counter())[gateway_of(i, rooms, gateways)] += 1
    assert len(per_room) == rooms
    for counts in per_room.values():
        assert sorted(counts) == list(range(gateways)), counts
        assert max(counts.values()) - min(counts.values()) <= 1, counts


def _search(capacity: float, *, start: float, factor: float, refine: int, top: float = 1e6):
    from gateway.bench.rooms import RateSearch

    search, tried = RateSearch(start, factor, top, refine), []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, rate <= capacity)
    return search, tried


@pytest.mark.parametrize("capacity", [1_000.0, 22_000.0, 27_000.0, 34_000.0, 52_777.0])
def test_the_rate_search_narrows_the_last_step(capacity: float) -> None:
    """Up by the factor until a step fails, then each refining step halves the gap
    (geometrically): with 1.25x steps and two refinements the answer is within 1.25**(1/4)
    (~6%) of what the side sustains, not within 1.25."""
    search, tried = _search(capacity, start=1_000.0, factor=1.25, refine=2)
    assert search.low is not None and search.high is not None
    assert search.low <= capacity < search.high
    assert search.high / search.low == pytest.approx(1.25**0.25)
    climbing, refining = tried[:-2], tried[-2:]
    assert climbing == pytest.approx([1_000.0 * 1.25**i for i in range(len(climbing))])
    assert all(climbing[-2] < r < climbing[-1] for r in refining), tried


def test_the_rate_search_stops_without_a_sustained_step_or_at_the_top() -> None:
    search, tried = _search(500.0, start=1_000.0, factor=1.5, refine=2)
    assert tried == [1_000.0] and search.low is None  # nothing to refine below the first step
    search, tried = _search(1e9, start=1_000.0, factor=2.0, refine=2, top=8_000.0)
    assert tried == [1_000.0, 2_000.0, 4_000.0, 8_000.0] and search.high is None
    search, tried = _search(3_000.0, start=1_000.0, factor=2.0, refine=0)
    assert tried == [1_000.0, 2_000.0, 4_000.0] and (search.low, search.high) == (2_000.0, 4_000.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--refine", "-1"], "--refine must be 0 or more"),
        (["-n", "25", "--room-size", "10"], "--connections must be a multiple of --room-size"),
    ],
)
def test_bad_options_are_a_clear_error_before_any_connection(tmp_path, extra, message) -> None:
    # port 9: nothing listens there, and the options are refused before anything connects
    args = ["gateway", "bench", "--mode", "rooms", "--url", "ws://127.0.0.1:9/", *extra]
    done = run_cli(args, gateway_env(tmp_path))
    assert done.returncode == 1, done.stderr
    assert f"wingman: bench failed: {message}" in done.stderr, done.stderr
