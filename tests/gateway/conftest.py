"""Fixtures for the gateway tests: real gateway subprocesses whose logs end up in failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.gateway_process import ASGI_SERVERS, GatewayFactory, GatewayProcess

_GATEWAYS = pytest.StashKey[list[GatewayProcess]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach every gateway's log to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gw in item.stash.get(_GATEWAYS, []):
            title = f"gateway log: {gw.name} (port {gw.port}, state dir {gw.state_dir})"
            report.sections.append((title, gw.log() or "(no output)"))


@pytest.fixture
def gateway_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayFactory]:
    """``make(env=None, *, args=(), name=None, state_dir=None, start=True)`` → a gateway.

    Each gateway gets its own state dir under ``tmp_path`` unless one is given; all are
    stopped (SIGTERM, then SIGKILL) when the test ends.
    """
    made: list[GatewayProcess] = []
    request.node.stash[_GATEWAYS] = made

    def make(
        env: dict[str, str | None] | None = None,
        *,
        args: tuple[str, ...] = (),
        name: str | None = None,
        state_dir: Path | None = None,
        start: bool = True,
    ) -> GatewayProcess:
        name = name or f"gw{len(made) + 1}"
        gw = GatewayProcess(state_dir or tmp_path / name, env=env, args=args, name=name)
        made.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        gw.stop()


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayProcess:
    """One embedded-mode gateway with token ``secret`` and default policy."""
    return gateway_factory()


@pytest.fixture(params=ASGI_SERVERS)
def each_server(request: pytest.FixtureRequest) -> str:
    """The test runs once per ASGI server (``WINGMAN_ASGI_SERVER``): for the guarantees
    gateway/server/serve.py implements per server (drain, close codes, pings)."""
    return request.param
