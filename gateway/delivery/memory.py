"""Closed connections' and finished runs' memory comes back: a full garbage collection
after churn.

A WebSocket's objects live in reference cycles (websockets' protocol and its parser
generator, uvicorn's protocol and its timers, our consumer and :class:`Connection`), so
reference counting alone never frees them: the cyclic collector must. Having lived as long
as their socket, they sit in the oldest generation when the socket closes, and the server's
tuning (``server._tune_gc``: startup objects frozen, young collections every 20k
allocations) makes CPython's own full collections rare. Left alone, each closed connection
kept ~17 KB: a gateway's RSS grew by ~17 MB per 1000 connections opened and closed, run
after run (``wingman gateway bench`` five times against one process: 127 → 196 MB).

An agent run's objects (its LangGraph graph, callbacks, messages) are cyclic too, and a run
that lasts long enough to see two young collections leaves them in the oldest generation
as well; but far fewer of them: a full collection after 200 ended webhook runs freed
5,000-15,000 objects, and took 50-260 ms on a busy 2-core machine, which set the webhook
benchmark's paced p99 (a collection every ~2 s at 100 runs a second). So an ended run counts
``RUN`` of a closed socket.

So the hub tells the :class:`Collector` when a socket closes or a run ends (the run
service). Once ``AFTER_ENDED`` of those have happened since the last full collection, one
runs ``SETTLE_SECONDS`` later (one collection for a whole burst of disconnects, done before
the next burst of connects: garbage still around when new connections allocate leaves
pymalloc's arenas fragmented, and the RSS grew anyway). Fewer are collected at the hub's
check every ``CHECK_SECONDS`` once ``MAX_DELAY_SECONDS`` passed. A full collection takes
~5-50 ms (it scans what was allocated since startup; ~34 ms after 1000 connections), during
which the event loop waits: once per burst of disconnects, at most once a minute otherwise.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

logger = logging.getLogger(__name__)

#: How often the hub asks whether a collection is due.
CHECK_SECONDS = 5.0
#: Closed sockets and ended runs that make a collection due...
AFTER_ENDED = 200
#: ... this long after the one that crossed the line.
SETTLE_SECONDS = 0.5
#: ... or, with fewer, how long their garbage may wait.
MAX_DELAY_SECONDS = 60.0
#: What an ended run counts for (a closed socket counts 1).
RUN = 0.1


class Collector:
    """See the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        after_ended: int = AFTER_ENDED,
        max_delay: float = MAX_DELAY_SECONDS,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        #: Where a due collection is scheduled (None: only :meth:`check` collects).
        self.loop = loop
        self.settle = settle
        self._scheduled: asyncio.TimerHandle | None = None
        self.after_ended = after_ended
        self.max_delay = max_delay
        #: Sockets closed and runs ended since the last collection.
        self.ended_since = 0
        self.last = time.monotonic()
        self.collections = 0
        self.seconds = 0.0
        self.freed = 0

    def ended(self, weight: float = 1.0) -> None:
        """A socket closed (or a run ended: ``weight`` ``RUN``)."""
        self.ended_since += weight
        if (
            self.ended_since >= self.after_ended
            and self.loop is not None
            and self._scheduled is None
        ):
            self._scheduled = self.loop.call_later(self.settle, self.check)

    def due(self) -> bool:
        return self.ended_since >= self.after_ended or (
            self.ended_since > 0 and time.monotonic() - self.last >= self.max_delay
        )

    def check(self) -> bool:
        """Collect if due; True when it did."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if not self.due():
            return False
        started = time.perf_counter()
        freed = gc.collect()
        took = time.perf_counter() - started
        self.collections += 1
        self.seconds += took
        self.freed += freed
        logger.debug(
            "full collection after %d closed sockets / ended runs: %d objects freed in %.1f ms",
            self.ended_since,
            freed,
            took * 1000,
        )
        self.ended_since = 0
        self.last = time.monotonic()
        return True
