"""Writing room history without a database round trip per message: entries are queued and
written together (``bulk_create``, one transaction) every ``FLUSH_SECONDS`` on the caller's
event loop, and on shutdown (the rooms extension's ``on_shutdown``). :meth:`HistoryWriter.add`
returns a future that is done once its entry is written (a group commit): a broadcast is
acknowledged only after that, so a message accepted is a message stored, and the queue
holds at most what the broadcasts in flight have sent (each waits for its batch). A batch
that cannot be written fails every waiter's future (the broadcast answers ``UNAVAILABLE``);
an entry of a room deleted meanwhile is dropped (nothing left to keep it in)."""

from __future__ import annotations

import asyncio
import contextvars
import logging

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction

from rooms.models import RoomMessage

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.02


Pending = tuple[RoomMessage, asyncio.Future]


def _write(batch: list[RoomMessage]) -> None:
    try:
        with transaction.atomic():
            RoomMessage.objects.bulk_create(batch)
    except IntegrityError:  # a room deleted meanwhile: keep the others
        for entry in batch:
            try:
                entry.save()
            except IntegrityError:
                logger.info("room %s is gone: history entry dropped", entry.room_id)


class HistoryWriter:
    """The queue of one event loop (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[Pending] = []
        self.task: asyncio.Task | None = None

    def add(self, entry: RoomMessage) -> asyncio.Future:
        """Queue ``entry``; the future is done once it is written (or failed with why not)."""
        written = self.loop.create_future()
        self.pending.append((entry, written))
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run(), context=contextvars.Context())
        return written

    async def _run(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                await database_sync_to_async(_write)([entry for entry, _ in batch])
            except Exception as exc:
                logger.exception("writing %d room history entries failed", len(batch))
                for _, written in batch:
                    if not written.done():
                        written.set_exception(exc)
                        written.exception()  # retrieved: a waiter may have gone
                continue
            for _, written in batch:
                if not written.done():
                    written.set_result(None)

    async def flush(self) -> None:
        """Until everything queued so far is written."""
        while self.task is not None and not self.task.done():
            await asyncio.shield(self.task)


_writers: dict[asyncio.AbstractEventLoop, HistoryWriter] = {}


def writer() -> HistoryWriter:
    """This event loop's writer."""
    loop = asyncio.get_running_loop()
    found = _writers.get(loop)
    if found is None:
        for old in [lp for lp in _writers if lp.is_closed()]:
            del _writers[old]
        found = _writers[loop] = HistoryWriter(loop)
    return found


async def history_flush() -> None:
    """Write what this loop queued (shutdown; tests that read history at once)."""
    await writer().flush()
