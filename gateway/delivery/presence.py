"""Presence: who is connected, across every gateway process, kept in Django's cache.

Each process owns one cache entry with its own connections (written only by that process,
so there are no write races) and registers itself in an index of processes. Entries expire
unless the owning process refreshes them, so a crashed process's connections disappear
within ``PROCESS_TTL`` seconds. ``stateVersion.presence`` is a shared counter bumped on
every change. The process-local side (who changed since the last flush) is :class:`Tracker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from operator import itemgetter
from typing import Any

from django.core.cache import cache

from gateway.protocol.dialects.base import dumps
from gateway.state import cache as shared
from gateway.state import outage

logger = logging.getLogger(__name__)

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


def _store(process_id: str, entries: dict[str, dict[str, Any]]) -> bool:
    cache.set(_blob_key(process_id), entries, timeout=PROCESS_TTL)
    return process_id in (cache.get(_INDEX) or {})


async def store_process(process_id: str, entries: dict[str, dict[str, Any]]) -> None:
    """Write this process's connections and keep it in the index (not needed, so not done,
    when the cache is this process's own memory: nobody else can read it)."""
    if shared.is_local():
        return
    if not await shared.run(_store, process_id, entries):
        await _with_index_lock(lambda idx: idx.__setitem__(process_id, time.time()))


async def remove_process(process_id: str) -> None:
    """Forget this process (clean shutdown)."""
    await cache.adelete(_blob_key(process_id))
    await _with_index_lock(lambda idx: idx.pop(process_id, None))


def process_ids() -> list[str]:
    """The ids of the gateway processes that keep presence (sync: a cache read)."""
    return list(cache.get(_INDEX) or {})


def _read_others(local_id: str | None) -> tuple[list[str], dict[str, Any], int]:
    index = cache.get(_INDEX) or {}
    others = [pid for pid in index if pid != local_id]
    blobs = cache.get_many([_blob_key(pid) for pid in others]) if others else {}
    return others, blobs, cache.get(_VERSION, 0)


async def _others(local_id: str | None) -> tuple[list[dict[str, dict[str, Any]]], dict[str, int]]:
    """The other processes' entry blobs and the state version (one cache round trip)."""
    others, blobs, version = await shared.run(_read_others, local_id)
    gone = [pid for pid in others if _blob_key(pid) not in blobs]
    if gone:
        await _with_index_lock(lambda idx: [idx.pop(pid, None) for pid in gone])
    return list(blobs.values()), {"presence": version, "health": HEALTH_VERSION}


async def snapshot(
    local_id: str | None = None, local_entries: dict[str, dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every connected client (this process's own entries taken live, not from the cache),
    oldest connection first, and ``stateVersion``."""
    blobs, sv = await _others(local_id)
    entries = list((local_entries or {}).values())
    for blob in blobs:
        entries.extend(blob.values())
    entries.sort(key=lambda e: e.get("connectedAt", 0))
    return entries, sv


async def snapshot_json(
    local_id: str, local_entries: dict[str, dict[str, Any]], local_json: dict[str, str]
) -> tuple[str, dict[str, int]]:
    """:func:`snapshot`'s entries as one JSON array, built from each local entry's JSON
    serialised once when it joined (``local_json``): a connect storm would otherwise
    re-encode all N entries for every one of the N ``hello-ok`` frames."""
    blobs, sv = await _others(local_id)
    pairs = [
        (entry.get("connectedAt", 0), local_json.get(conn_id) or dumps(entry))
        for conn_id, entry in local_entries.items()
    ]
    for blob in blobs:
        pairs.extend((e.get("connectedAt", 0), dumps(e)) for e in blob.values())
    pairs.sort(key=itemgetter(0))
    return "[" + ",".join([text for _, text in pairs]) + "]", sv


def _bump() -> int:
    cache.add(_VERSION, 0, timeout=None)
    try:
        return cache.incr(_VERSION)
    except ValueError:  # evicted between add and incr
        cache.set(_VERSION, 1, timeout=None)
        return 1


async def bump_version() -> int:
    """Increment ``stateVersion.presence`` (atomic in both cache backends)."""
    return await shared.run(_bump)


async def state_version() -> dict[str, int]:
    return {"presence": await shared.run(cache.get, _VERSION, 0), "health": HEALTH_VERSION}


class Tracker:
    """This process's presence: its established connections' entries, and the deltas not
    yet published. The first change publishes at once; a burst within
    ``COALESCE_SECONDS`` shares one ``presence`` event."""

    COALESCE_SECONDS = 0.2
    #: While Redis is down, changes are kept and published again this often.
    RETRY_SECONDS = 2.0

    def __init__(
        self,
        process_id: str,
        publish: Callable[[dict[str, Any]], Awaitable[None]],
        on_recovered: Callable[[], Any] = lambda: None,
    ):
        self.process_id = process_id
        #: Called when a flush finds Redis answering again after an outage.
        self.on_recovered = on_recovered
        self.closing = False
        self.entries: dict[str, dict[str, Any]] = {}
        #: The same entries serialised once each, for the hello-ok snapshot.
        self.entries_json: dict[str, str] = {}
        self._publish = publish
        self._pending: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Task | None = None

    def add(self, conn_id: str, entry: dict[str, Any]) -> None:
        self.entries[conn_id] = entry
        self.entries_json[conn_id] = dumps(entry)
        self._changed({**entry, "reason": "connect"})

    def remove(self, conn_id: str, ts: int) -> bool:
        """Forget a connection; True when it was present (its disconnect is published)."""
        entry = self.entries.pop(conn_id, None)
        self.entries_json.pop(conn_id, None)
        if entry is None:
            return False
        self._changed({**entry, "reason": "disconnect", "ts": ts})
        return True

    def _changed(self, change: dict[str, Any]) -> None:
        self._pending.append(change)
        if self._timer is not None:
            return
        since = time.monotonic() - self._last_flush
        self._schedule(max(0.0, self.COALESCE_SECONDS - since))

    def _schedule(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        self._flushing = asyncio.ensure_future(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            if outage.is_outage(exc):
                outage.redis_state.failed(exc, "storing presence")
            else:
                logger.exception("presence update not shared")

    async def flush(self) -> None:
        """Store this process's presence, bump the version, publish the batched delta."""
        async with self._lock:
            changes, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if not changes:
                return
            # Store, then publish: a client that reacts to the delta by asking for the list
            # (system-presence, on any process) must find the change in it (under load the
            # delta arrived first and the list lacked the connection it announced).
            try:
                version = await bump_version()
                await store_process(self.process_id, self.entries)
            except outage.ERRORS as exc:
                self._keep(changes, exc)
                return
            if outage.redis_state.answered():  # an outage ended: rejoin what it may have lost
                self.on_recovered()
            sv = {"presence": version, "health": HEALTH_VERSION}
            await self._publish({"entries": changes, "stateVersion": sv})

    def _keep(self, changes: list[dict[str, Any]], exc: BaseException) -> None:
        """Redis is down: keep the changes (the last one per connection, so they stay
        bounded) and publish them when it answers again."""
        outage.redis_state.failed(exc, "publishing presence")
        latest: dict[Any, dict[str, Any]] = {}
        for change in [*changes, *self._pending]:
            latest.pop(change.get("connId"), None)
            latest[change.get("connId")] = change
        self._pending = list(latest.values())
        if self._timer is None and not self.closing:
            self._schedule(self.RETRY_SECONDS)

    async def heartbeat(self) -> None:
        await store_process(self.process_id, self.entries)

    async def snapshot(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Every process's presence entries and ``stateVersion``."""
        return await snapshot(self.process_id, self.entries)

    async def snapshot_json(self) -> tuple[str, dict[str, int]]:
        """:meth:`snapshot` with the entries as one JSON array (hello-ok)."""
        return await snapshot_json(self.process_id, self.entries, self.entries_json)

    async def close(self) -> None:
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(Exception):
            await self.flush()
        with contextlib.suppress(Exception):
            await remove_process(self.process_id)
