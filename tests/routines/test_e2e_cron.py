"""The recorded OpenClaw CLI cron session against a real ``wingman gateway run`` process
(uvicorn, its own state dir): each command on its own WebSocket, as the CLI does, including
``cron run --wait`` polling ``cron.runs`` until the run, executed by the gateway, ended."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import _GATEWAYS
from tests.gateway.gateway_process import GatewayProcess
from tests.routines.test_cron_methods import Replay, replay_recording

pytestmark = pytest.mark.e2e


@pytest.fixture
def gateway(tmp_path, request) -> Iterator[GatewayProcess]:
    agents = [{"id": "main", "name": "Main", "default": True, "model": "wingman:echo"}]
    config = {"agents": {"list": agents}}
    (tmp_path / "wingman.config.json").write_text(json.dumps(config), encoding="utf-8")
    gw = GatewayProcess(tmp_path, name="cron-gateway").start()
    request.node.stash[_GATEWAYS] = [gw]
    yield gw
    gw.stop()


async def test_recorded_openclaw_cron_session_on_a_real_gateway(gateway: GatewayProcess):
    replay = Replay(gateway.url)
    await replay_recording(replay)
    assert replay.removed
