"""What a Celery worker process needs to execute runs: one asyncio loop of its own
(``gateway/apps.py`` imports this module, so the worker signals below are connected).

Runs are long, I/O-bound and asyncio inside (LangGraph streams, database calls through
``database_sync_to_async``, events through the channel layer). So each worker process that
executes tasks starts one event loop in a thread, with a headless
:class:`~gateway.delivery.seat.Seat` (its events go to every gateway process; control
messages such as ``run.cancel`` reach it) and the apps' background work (the run service's
heartbeat and sweeper). A task hands its coroutine to that loop and waits for it, so many
runs share one loop, one channel-layer connection pool and one seat, whatever the pool.

Its objects from startup (Django, the apps, the runtime) are frozen out of the cyclic
GC's scans and young collections are rarer, as in a gateway (``common.tune_gc``): each
full collection otherwise scanned them all (~2 ms of CPU per routine run, and a stopped
loop while streaming, measured).

It starts when the process starts, never on the first task (``worker_process_init`` in a
prefork child or the solo pool, ``worker_init`` for the threads pool), and drains on
shutdown: Celery's warm shutdown lets running tasks finish first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from celery import signals

from gateway.delivery import extensions, memory
from gateway.delivery import seat as seats
from gateway.server import common

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerRuntime:
    """One per worker process: the loop thread, the seat, the background work."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="wingman-runs", daemon=True)
        self.seat: seats.Seat | None = None
        self._background: list[asyncio.Task] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self.submit(self._start).result(timeout=60)
        logger.info("worker runtime started (seat %s)", self.seat.id if self.seat else "?")

    async def _start(self) -> None:
        seat = seats.Seat(headless=True)
        await seat.start()
        seats.install(seat)
        self.seat = seat
        self._background = [self.loop.create_task(work()) for work in extensions.background()]
        self._background.append(self.loop.create_task(self._collect_garbage()))

    async def _collect_garbage(self) -> None:
        """Ended runs' cyclic garbage (gateway/delivery/memory.py), as a gateway's hub does."""
        while True:
            await asyncio.sleep(memory.CHECK_SECONDS)
            if self.seat is not None:
                self.seat.collector.check()

    def submit(self, make: Callable[[], Awaitable[T]]) -> Future[T]:
        """Run ``make()`` on the loop; the future is the caller's to wait on."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.submit(self._stop).result(timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    async def _stop(self) -> None:
        for hook in extensions.shutdown_hooks():
            with contextlib.suppress(Exception):
                await hook()
        for task in self._background:
            task.cancel()
        if self.seat is not None:
            await self.seat.stop()
            seats.forget(self.seat)


_runtime: WorkerRuntime | None = None
_lock = threading.Lock()


def start_runtime() -> WorkerRuntime:
    """Start this process's runtime (once), after Django's apps registered their
    extensions (control handlers, background work)."""
    global _runtime
    import django

    django.setup()
    with _lock:
        if _runtime is None:
            # As a gateway server does: what was imported lives as long as the process, and
            # a streaming run allocates fast; untuned, a full collection (~100 ms here, the
            # loop stopped) came every few thousand chunks and set the stream's p99.
            common.tune_gc()
            runtime = WorkerRuntime()
            runtime.start()
            _runtime = runtime
    return _runtime


def runtime() -> WorkerRuntime:
    """This worker process's runtime; it was started with the process."""
    if _runtime is None:
        raise RuntimeError("the worker runtime was not started with this process")
    return _runtime


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Execute a coroutine on the runtime's loop and wait for its result (a task's body)."""
    return runtime().submit(make).result()


def _stop_runtime(**_kwargs: Any) -> None:
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.stop()
            _runtime = None


@signals.worker_process_init.connect
def _process_started(**_kwargs: Any) -> None:
    """A prefork child (or the solo pool's process) will execute tasks."""
    start_runtime()


@signals.worker_init.connect
def _worker_started(sender: Any = None, **_kwargs: Any) -> None:
    """The threads pool executes tasks in this (the main) process."""
    pool = getattr(sender, "pool_cls", "")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__name__}"
    if "thread" in name.lower():
        start_runtime()


signals.worker_process_shutdown.connect(_stop_runtime)
signals.worker_shutdown.connect(_stop_runtime)
