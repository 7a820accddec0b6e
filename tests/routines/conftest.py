"""Fixtures for the routines tests: an agent on the offline model, a routine factory."""

from __future__ import annotations

import pytest

from agents.models import Agent
from routines.services import routine_create

# The end-to-end fixtures (real gateway / worker subprocesses, logs attached to failures).
from tests.gateway.conftest import (  # noqa: F401
    gateway_factory,
    pytest_runtest_makereport,
    worker_factory,
)

#: A routine as the ``routines.create`` method and ``POST /api/routines`` take it (agent ``main``).
STANDUP = {
    "name": "standup",
    "agentId": "main",
    "cron": "0 9 * * 1-5",
    "timezone": "Europe/Berlin",
    "prompt": "news summary",
}


@pytest.fixture
def agent(db) -> Agent:
    """An agent on the offline echo model."""
    return Agent.objects.create(id="research", model="wingman:echo")


def make_routine(agent_id: str = "research", **fields):
    fields.setdefault("name", "News")
    fields.setdefault("prompt", "summarise the news")
    fields.setdefault("cron", "0 9 * * 1-5")
    fields.setdefault("timezone", "Europe/Berlin")
    return routine_create(agent_id=agent_id, **fields)
