"""A throwaway network namespace for the mDNS tests: only a loopback interface, up, with
multicast on and a 224.0.0.0/4 route, so multicast DNS works inside it and never reaches
the machine's real interfaces; :class:`NetnsGateway` runs a gateway inside it (the
``netns`` fixture is in tests/gateway/discovery/conftest.py). Needs root and iproute2: elsewhere the tests are skipped
with the reason, and fail under CI=true."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.gateway.gateway_process import GatewayProcess


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot create a network namespace: {why}")
    pytest.skip(f"cannot create a network namespace: {why}")


@contextlib.contextmanager
def network_namespace() -> Iterator[str]:
    """Create the namespace (loopback up, multicast on, multicast route); delete it after."""
    if shutil.which("ip") is None:
        _unavailable("iproute2 (`ip`) is not installed")
    name = f"wingman-t-{uuid.uuid4().hex[:8]}"
    added = _ip("netns", "add", name)
    if added.returncode != 0:
        _unavailable(added.stderr.strip() or f"ip netns add exited {added.returncode}")
    try:
        for step in (
            ("link", "set", "lo", "up"),
            ("link", "set", "lo", "multicast", "on"),
            ("route", "add", "224.0.0.0/4", "dev", "lo"),
        ):
            done = _ip("netns", "exec", name, "ip", *step)
            assert done.returncode == 0, f"ip {' '.join(step)} in {name}: {done.stderr}"
        yield name
    finally:
        _ip("netns", "del", name)


def netns_exec(name: str, argv: list[str]) -> list[str]:
    """``argv`` run inside the namespace (``ip netns exec`` execs it: same pid)."""
    return ["ip", "netns", "exec", name, *argv]


class NetnsGateway(GatewayProcess):
    """A gateway process started inside a network namespace."""

    def __init__(self, *args, netns: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.netns = netns

    def _spawn(self, argv: list[str]) -> None:
        super()._spawn(netns_exec(self.netns, argv))
