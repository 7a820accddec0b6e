"""Database calls from async code.

channels' ``database_sync_to_async`` runs every call on one thread per process (thread
sensitive), so all of a process's database work queues behind each other: a worker
executing hundreds of runs, or a gateway accepting a flood of webhook deliveries, waits on
that one thread while PostgreSQL sits idle. With a server database a call here runs on a
pool thread instead (each with its own persistent connection, ``CONN_MAX_AGE``), so calls
proceed in parallel. SQLite serialises writers anyway, and its in-memory test database
lives on one connection, so with SQLite calls stay on the one thread.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def parallel() -> bool:
    """Whether database calls may run on several threads at once (a server database). Read
    from the settings: ``connections["default"]`` on an event loop makes a new connection
    object per task context (its connections are local to one), at every call."""
    return not connections.settings["default"]["ENGINE"].endswith("sqlite3")


def db_call(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` (sync, using the ORM) as an awaitable, on a pool thread with a server
    database and on the one database thread with SQLite."""
    return database_sync_to_async(func, thread_sensitive=not parallel())


#: With SQLite, how many background calls may be queued on the one database thread at once.
BACKGROUND_IN_FLIGHT = 2

_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _lane() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    lane = _lanes.get(loop)
    if lane is None:
        lane = _lanes[loop] = asyncio.Semaphore(BACKGROUND_IN_FLIGHT)
    return lane


def db_call_background(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``db_call`` for work nobody waits on an answer for (a run's own database work: its
    turn, history, end, heartbeat). With SQLite every call of the process queues on the one
    database thread in order, so a burst of executing runs made each request answered from
    that thread (a webhook delivery's accept) wait behind dozens of their calls: here at
    most ``BACKGROUND_IN_FLIGHT`` of them are on that queue at once, the rest wait their
    turn on the event loop, and a request's call overtakes them. With a server database
    calls run on pool threads in parallel, unchanged."""
    call = db_call(func)

    @functools.wraps(func)
    async def background(*args: P.args, **kwargs: P.kwargs) -> R:
        if parallel():
            return await call(*args, **kwargs)
        async with _lane():
            return await call(*args, **kwargs)

    return background
