"""A per-process memory of rooms, so a swarm's broadcast costs no database query.

A broadcast looks its room and member agents up here. An entry younger than
``ROOM_CACHE_SECONDS`` (``WINGMAN_ROOM_CACHE_SECONDS``, 1 s) is used as is; an older one is
still used, while one refresh from the database runs in the background (a room changed or
deleted by another process is seen within about a second); a room not known yet is loaded
once, however many broadcasts wait for it. A change made in this process forgets every
room at once."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOM_CACHE_SECONDS = float(os.environ.get("WINGMAN_ROOM_CACHE_SECONDS", "1.0"))

Loader = Callable[[str], Awaitable[tuple[Any, list[str]]]]

_rooms: dict[str, tuple[float, Any, list[str]]] = {}
_loading: dict[str, asyncio.Future] = {}


async def lookup(key: str, load: Loader) -> tuple[Any, list[str]]:
    """(room, agent ids) for ``key`` (an id or a name); ``load`` reads the database (and
    raises for no such room)."""
    hit = _rooms.get(key)
    if hit is not None:
        if hit[0] < time.monotonic() and key not in _loading:
            task = asyncio.ensure_future(_load(key, load))
            task.add_done_callback(_quiet)
        return hit[1], hit[2]
    pending = _loading.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    return await _load(key, load)


async def _load(key: str, load: Loader) -> tuple[Any, list[str]]:
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    _loading[key] = future
    try:
        room, agent_ids = await load(key)
    except BaseException as exc:
        _rooms.pop(key, None)
        future.set_exception(exc)
        future.exception()  # retrieved: a refresh nobody awaits must not log it
        raise
    else:
        expires = time.monotonic() + ROOM_CACHE_SECONDS
        _rooms[key] = _rooms[room.pk] = (expires, room, agent_ids)
        future.set_result((room, agent_ids))
        return room, agent_ids
    finally:
        _loading.pop(key, None)


def _quiet(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


def forget() -> None:
    """Forget every room (a room or its agents changed here)."""
    _rooms.clear()
