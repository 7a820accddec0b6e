"""Fixtures for the discovery tests: a throwaway network namespace for real mDNS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.netns import network_namespace


@pytest.fixture
def netns() -> Iterator[str]:
    """The name of a fresh network namespace (loopback only, multicast on); deleted after."""
    with network_namespace() as name:
        yield name
