"""The rooms' configurable limits (environment variables, read on every check so a test or
an operator's restart picks a new value up).

- ``WINGMAN_ROOMS_MAX`` (1000): rooms stored; one more is ``CONFLICT`` (``details.limit``).
- ``WINGMAN_ROOM_MAX_MEMBERS`` (100): members of one room, agents and live connections
  together; one more is ``CONFLICT``.
- ``WINGMAN_MAX_NODES`` (1000, seed 000 ``maxNodes``): registered nodes across every
  gateway process; one more is ``MAX_NODES_REACHED``.
- ``WINGMAN_NODE_PING_TIMEOUT_MS`` (60000, seed 000 ``pingTimeout``): a node that sent
  nothing (no ``ping``/``pong``, no frame) for this long is stale: it is closed and leaves
  its groups.
- ``WINGMAN_NODE_PING_INTERVAL_MS`` (30000, seed 000 ``pingInterval``): the gateway sends
  ``ping`` to a node that has been silent this long (a busy node is never pinged: its own
  frames show it is alive, and a swarm's pongs never arrive all at once).
- ``WINGMAN_ROOM_HISTORY_LIMIT`` (200): entries ``room_history`` returns at most.

The rate limit is the gateway's per-connection one (``WINGMAN_RATE_LIMIT``, policy
``rateLimitPerMinute``, error ``RATE_LIMITED``), which every room and node frame counts
against.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def max_rooms() -> int:
    return _int("WINGMAN_ROOMS_MAX", 1000)


def max_members() -> int:
    return _int("WINGMAN_ROOM_MAX_MEMBERS", 100)


def max_nodes() -> int:
    return _int("WINGMAN_MAX_NODES", 1000)


def node_ping_timeout_ms() -> int:
    return _int("WINGMAN_NODE_PING_TIMEOUT_MS", 60_000)


def node_ping_interval_ms() -> int:
    return _int("WINGMAN_NODE_PING_INTERVAL_MS", 30_000)


def history_limit() -> int:
    return _int("WINGMAN_ROOM_HISTORY_LIMIT", 200)
