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
