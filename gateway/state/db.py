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

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def parallel() -> bool:
    """Whether database calls may run on several threads at once (a server database)."""
    return connections["default"].vendor != "sqlite"


def db_call(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` (sync, using the ORM) as an awaitable, on a pool thread with a server
    database and on the one database thread with SQLite."""
    return database_sync_to_async(func, thread_sensitive=not parallel())
