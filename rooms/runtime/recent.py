"""A per-process memory of rooms, so a swarm's broadcast costs no database query.

A broadcast looks its room and member agents up here. An entry younger than
``ROOM_CACHE_SECONDS`` (``WINGMAN_ROOM_CACHE_SECONDS``, 1 s) is used as is; an older one is
still used, and is read again in the background together with every other one that is
stale or half way there (one refresh at a time, two queries for all of them): a room
changed or deleted by another process is seen within about a second, and a process serving
many rooms reads them about once a second in all, not once per room (their expiries fall
in step after the first refresh; one refresh per stale room kept the database thread busy,
back to back, under a swarm of 100 rooms). A room not known yet is loaded once, however many
broadcasts wait for it. A change made in this process forgets every room at once."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOM_CACHE_SECONDS = float(os.environ.get("WINGMAN_ROOM_CACHE_SECONDS", "1.0"))

Found = tuple[Any, list[str]]
#: keys (ids or names) -> what was found for each (a key not in the answer: no such room)
Loader = Callable[[list[str]], Awaitable[dict[str, Found]]]

_rooms: dict[str, tuple[float, Any, list[str]]] = {}
_loading: dict[str, asyncio.Future] = {}
_stale: set[str] = set()
_refreshing: list[asyncio.Task] = []


async def lookup(key: str, load: Loader) -> Found:
    """(room, agent ids) for ``key`` (an id or a name); ``load`` reads the database.
    Raises ``LookupError`` for no such room."""
    hit = _rooms.get(key)
    if hit is not None:
        if hit[0] < time.monotonic():
            _stale.add(key)
            if not _refreshing or _refreshing[0].done():
                _refreshing[:] = [asyncio.ensure_future(_refresh(load))]
        return hit[1], hit[2]
    pending = _loading.get(key)
    if pending is None:
        pending = _loading[key] = asyncio.get_running_loop().create_future()
        try:
            _keep(key, await load([key]))
        except Exception as exc:
            pending.set_exception(exc)
        except BaseException:
            pending.cancel()  # a waiter's cancellation: the next lookup loads again
            raise
        finally:
            _loading.pop(key, None)
        if not pending.done():
            found = _rooms.get(key)
            if found is None:
                pending.set_exception(LookupError(key))
            else:
                pending.set_result((found[1], found[2]))
        pending.exception()  # retrieved here: nobody else may be waiting
    return await asyncio.shield(pending)


def _keep(key: str | None, found: dict[str, Found]) -> None:
    expires = time.monotonic() + ROOM_CACHE_SECONDS
    for k, (room, agent_ids) in found.items():
        _rooms[k] = _rooms[room.pk] = (expires, room, agent_ids)
    if key is not None and key not in found:
        _rooms.pop(key, None)


async def _refresh(load: Loader) -> None:
    await asyncio.sleep(0)
    soon = time.monotonic() + ROOM_CACHE_SECONDS / 2
    keys = sorted(_stale.union(k for k, hit in _rooms.items() if hit[0] < soon))
    _stale.clear()
    try:
        found = await load(keys)
    except Exception:
        return  # tried again at the next stale lookup
    for key in keys:
        if key not in found:
            _rooms.pop(key, None)
    _keep(None, found)


def forget() -> None:
    """Forget every room (a room or its agents changed here)."""
    _rooms.clear()
