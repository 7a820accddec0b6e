"""Calling Django's cache from the event loop without needless thread hops.

Django's async cache methods wrap the sync ones in ``sync_to_async`` — a thread hop per
call (~0.1-0.3 ms each; a rate-limit check makes three). The local-memory cache never
blocks, so it is called directly; a networked cache (Redis) runs a whole multi-step
operation in ONE worker-thread hop instead of one per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.core.cache.backends.locmem import LocMemCache

P = ParamSpec("P")
T = TypeVar("T")


async def run(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a sync function that only talks to the cache."""
    if is_local():
        return func(*args, **kwargs)
    return await sync_to_async(func, thread_sensitive=False)(*args, **kwargs)


def is_local() -> bool:
    """Is the default cache this process's own memory (not shared with other processes)?"""
    from django.core.cache import caches

    return isinstance(caches["default"], LocMemCache)
