"""Fixtures for the rooms tests: agents, clients on the real ASGI app, waiting helpers."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from gateway.delivery.hub import reset_hub
from rooms.models import RoomMessage
from tests.agents.conftest import acreate_agent  # noqa: F401
from tests.gateway.communicator import Client

# The end-to-end fixtures (real gateway subprocesses, logs attached to failures).
from tests.gateway.conftest import (  # noqa: F401
    each_server,
    gateway,
    gateway_factory,
    pytest_runtest_makereport,
    worker_factory,
)
from tests.gateway.gateway_process import wait_until  # noqa: F401


@pytest.fixture
async def hub_cleanup():
    """Stop the hub a test started when it ends."""
    yield
    await reset_hub()


async def canonical_client() -> tuple[Client, str]:
    """A handshaken canonical client on the in-process app and its connection id."""
    client = Client()
    res = await client.handshake()
    assert res["ok"], res
    return client, res["payload"]["server"]["connId"]


def _answers(room_id: str) -> list[RoomMessage]:
    return list(RoomMessage.objects.filter(room_id=room_id).exclude(run_id="").order_by("pk"))


answers = database_sync_to_async(_answers)
