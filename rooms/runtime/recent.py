"""A short-lived per-process memory of rooms (``ROOM_CACHE_SECONDS``, 1 s): a broadcast
looks its room and member agents up here instead of in the database, so a swarm's message
costs no query. A change made in this process forgets the room at once; one made in
another process is seen within the second."""

from __future__ import annotations

import os
import time
from typing import Any

ROOM_CACHE_SECONDS = float(os.environ.get("WINGMAN_ROOM_CACHE_SECONDS", "1.0"))

_rooms: dict[str, tuple[float, Any, list[str]]] = {}


def get(key: str) -> tuple[Any, list[str]] | None:
    """(room, agent ids) remembered under ``key`` (an id or a name), if still fresh."""
    hit = _rooms.get(key)
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1], hit[2]


def put(key: str, room: Any, agent_ids: list[str]) -> None:
    expires = time.monotonic() + ROOM_CACHE_SECONDS
    _rooms[key] = (expires, room, agent_ids)
    _rooms[room.pk] = (expires, room, agent_ids)
    if len(_rooms) > 10_000:
        now = time.monotonic()
        for k in [k for k, v in _rooms.items() if v[0] < now]:
            del _rooms[k]


def forget() -> None:
    """Forget every room (a room or its agents changed here)."""
    _rooms.clear()
