"""Dialect detection: the first frame fixes the connection's dialect.

Adding a dialect = one module here with a :class:`~.base.Dialect` subclass, listed in
``DIALECTS`` (order matters only if two could match the same frame; none do).
"""

from __future__ import annotations

from typing import Any

from gateway.protocol.dialects.base import Dialect
from gateway.protocol.dialects.canonical import Canonical
from gateway.protocol.dialects.jsonrpc import JsonRpc
from gateway.protocol.dialects.wingman_client import WingmanClient
from gateway.protocol.dialects.wingman_node import WingmanNode

DIALECTS: tuple[Dialect, ...] = (Canonical(), JsonRpc(), WingmanClient(), WingmanNode())
BY_NAME = {d.name: d for d in DIALECTS}


def detect(frame: Any) -> Dialect | None:
    """The dialect whose first frame this is, or None (the socket is then closed 1008)."""
    if not isinstance(frame, dict):
        return None
    for dialect in DIALECTS:
        if dialect.matches(frame):
            return dialect
    return None
