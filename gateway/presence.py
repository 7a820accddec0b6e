"""Presence: who is connected, across every gateway process, kept in Django's cache.

Each process owns one cache entry with its own connections (written only by that process,
so there are no write races) and registers itself in an index of processes. Entries expire
unless the owning process refreshes them, so a crashed process's connections disappear
within ``PROCESS_TTL`` seconds. ``stateVersion.presence`` is a shared counter bumped on
every change. The process-local side (who changed since the last flush) is in ``hub.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from django.core.cache import cache

PROCESS_TTL = 30
HEARTBEAT_SECONDS = 10
_INDEX = "gw:presence:procs"
_LOCK = "gw:presence:lock"
_VERSION = "gw:sv:presence"
#: ``stateVersion.health``: bumped when health can change (nothing changes it yet).
HEALTH_VERSION = 1


def _blob_key(process_id: str) -> str:
    return f"gw:presence:proc:{process_id}"


async def _with_index_lock(update) -> None:
    """Read-modify-write the process index under a short cache lock (``cache.add``)."""
    for _ in range(200):
        if await cache.aadd(_LOCK, 1, timeout=5):
            try:
                index = await cache.aget(_INDEX) or {}
                update(index)
                await cache.aset(_INDEX, index, timeout=None)
            finally:
                await cache.adelete(_LOCK)
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("presence index lock not acquired")


async def store_process(process_id: str, entries: dict[str, dict[str, Any]]) -> None:
    """Write this process's connections and keep it in the index."""
    await cache.aset(_blob_key(process_id), entries, timeout=PROCESS_TTL)
    index = await cache.aget(_INDEX) or {}
    if process_id not in index:
        await _with_index_lock(lambda idx: idx.__setitem__(process_id, time.time()))


async def remove_process(process_id: str) -> None:
    """Forget this process (clean shutdown)."""
    await cache.adelete(_blob_key(process_id))
    await _with_index_lock(lambda idx: idx.pop(process_id, None))


async def list_entries(
    local_id: str | None = None, local_entries: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every connected client; this process's own entries are taken live, not from cache."""
    index = await cache.aget(_INDEX) or {}
    others = [pid for pid in index if pid != local_id]
    blobs = await cache.aget_many([_blob_key(pid) for pid in others]) if others else {}
    gone = [pid for pid in others if _blob_key(pid) not in blobs]
    if gone:
        await _with_index_lock(lambda idx: [idx.pop(pid, None) for pid in gone])
    entries = list((local_entries or {}).values())
    for blob in blobs.values():
        entries.extend(blob.values())
    entries.sort(key=lambda e: e.get("connectedAt", 0))
    return entries


async def bump_version() -> int:
    """Increment ``stateVersion.presence`` (atomic in both cache backends)."""
    await cache.aadd(_VERSION, 0, timeout=None)
    try:
        return await cache.aincr(_VERSION)
    except ValueError:  # evicted between add and incr
        await cache.aset(_VERSION, 1, timeout=None)
        return 1


async def state_version() -> dict[str, int]:
    return {"presence": await cache.aget(_VERSION, 0), "health": HEALTH_VERSION}
