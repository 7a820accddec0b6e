"""Fixtures for the gateway tests: real gateway subprocesses whose logs end up in failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.gateway_process import (
    ASGI_SERVERS,
    GatewayFactory,
    GatewayProcess,
    WorkerFactory,
    WorkerProcess,
)

_GATEWAYS = pytest.StashKey[list[GatewayProcess]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach every gateway's (and worker's) log to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gw in item.stash.get(_GATEWAYS, []):
            if isinstance(gw, WorkerProcess):
                title = f"worker log: {gw.name} (state dir {gw.state_dir})"
            else:
                title = f"gateway log: {gw.name} (port {gw.port}, state dir {gw.state_dir})"
            report.sections.append((title, gw.log() or "(no output)"))


@pytest.fixture
def gateway_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayFactory]:
    """``make(env=None, *, args=(), name=None, state_dir=None, start=True)`` → a gateway.

    Each gateway gets its own state dir under ``tmp_path`` unless one is given; all are
    stopped (SIGTERM, then SIGKILL) when the test ends.
    """
    made: list[GatewayProcess] = []
    reported = request.node.stash.setdefault(_GATEWAYS, [])

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
        reported.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    for gw in made:
        gw.stop()


@pytest.fixture
def worker_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerFactory]:
    """``make(env=None, *, name=None, state_dir=None, concurrency=4, start=True)`` → a
    Celery worker process; its log joins the gateways' in a failure report, and it is
    stopped (SIGTERM, then SIGKILL) when the test ends, before the gateways."""
    made: list[WorkerProcess] = []
    reported = request.node.stash.setdefault(_GATEWAYS, [])

    def make(
        env: dict[str, str | None] | None = None,
        *,
        name: str | None = None,
        state_dir: Path | None = None,
        concurrency: int = 4,
        start: bool = True,
    ) -> WorkerProcess:
        name = name or f"worker{len(made) + 1}"
        worker = WorkerProcess(
            state_dir or tmp_path / name, env=env, concurrency=concurrency, name=name
        )
        made.append(worker)
        reported.append(worker)
        if start:
            worker.start()
        return worker

    yield make
    for worker in made:
        worker.stop()


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> GatewayProcess:
    """One embedded-mode gateway with token ``secret`` and default policy."""
    return gateway_factory()


@pytest.fixture(scope="module")
def module_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One embedded-mode gateway (token ``secret``, default policy) for all the tests of a
    module; use it through ``shared_gateway``."""
    gw = GatewayProcess(tmp_path_factory.mktemp("module-gw"), name="module-gw")
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def shared_gateway(
    request: pytest.FixtureRequest, module_gateway: GatewayProcess
) -> GatewayProcess:
    """``gateway``, but started once per module: only for tests that change nothing a later
    test could see (no policy or config change, no signal, no lockout). Its log joins a
    failed test's report (with the earlier tests' lines)."""
    assert module_gateway.running, f"the module's gateway has exited\n{module_gateway.log_tail()}"
    request.node.stash.setdefault(_GATEWAYS, []).append(module_gateway)
    return module_gateway


@pytest.fixture(params=ASGI_SERVERS)
def each_server(request: pytest.FixtureRequest) -> str:
    """The test runs once per ASGI server (``WINGMAN_ASGI_SERVER``): for the guarantees
    gateway/server/serve.py implements per server (drain, close codes, pings)."""
    return request.param
