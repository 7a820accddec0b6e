"""Fixtures for the operations tests (backup, logs, migrations, deployment files): real
gateway and worker subprocesses, their logs attached to failures."""

from tests.agents.test_e2e_agents import empty_database, shared_database  # noqa: F401
from tests.gateway.conftest import (  # noqa: F401
    gateway,
    gateway_factory,
    pytest_runtest_makereport,
    worker_factory,
)
