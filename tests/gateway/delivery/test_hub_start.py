"""The hub started by its first user, wherever that is: a sync view (``POST /api/runs`` runs
the run service through ``async_to_sync``) must leave it working like a socket would."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync, sync_to_async

from gateway.delivery import seat as seat_module
from gateway.delivery.hub import get_hub, reset_hub


async def test_a_hub_first_started_by_a_sync_view_keeps_its_timers(monkeypatch, caplog):
    # the group refresh writes the cache through sync_to_async, like presence and runs do
    monkeypatch.setattr(seat_module, "REFRESH_SECONDS", 0.05)
    await reset_hub()
    hub = await sync_to_async(async_to_sync(get_hub))()  # what a sync view does
    try:
        await asyncio.sleep(0.5)  # ~10 refreshes
        assert hub is await get_hub()
    finally:
        await reset_hub()
    failed = [
        r
        for r in caplog.records
        if r.name.startswith("gateway.delivery") and r.levelno >= logging.WARNING
    ]
    assert not failed, [r.getMessage() for r in failed]
