"""Where an accepted run executes: the executor chosen by settings.

- ``local`` (the embedded default, no ``REDIS_URL``): in the accepting process's event loop;
- ``celery`` (the default with ``REDIS_URL``): in a Celery worker, through the
  ``agents.run_execute`` task, which takes the run id. The worker claims the run, executes
  it on its own loop and streams its events through the channel layer to every gateway.

``WINGMAN_RUN_EXECUTOR`` chooses; a run with an in-process observer (``wingman agent
--local``) always executes locally.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.protocol.errors import ErrorCode, GatewayError

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "celery")
#: A dispatch that fails (Redis briefly unreachable) is retried this long before the
#: sweeper's periodic re-dispatch takes over.
DISPATCH_RETRY_SECONDS = 10.0


def executor_for(requested: str | None) -> str:
    name = requested or settings.WINGMAN_RUN_EXECUTOR
    if name not in EXECUTORS:
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"unknown run executor {name!r}")
    return name


#: The Celery task that executes a run in a worker (``agents/tasks.py``), sent by name: the
#: run service does not import its own callers.
RUN_TASK = "agents.run_execute"


def _send(run_id: str) -> None:
    from wingman.celery import app

    app.send_task(RUN_TASK, args=(run_id,))


#: Dispatches in flight, referenced until they end (the loop keeps only weak references).
_in_flight: set[asyncio.Task] = set()


def send_soon(run_id: str) -> None:
    """Dispatch in the background (the caller has answered already)."""
    task = asyncio.get_running_loop().create_task(
        send_to_worker(run_id), context=contextvars.Context()
    )
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


async def send_to_worker(run_id: str) -> bool:
    """Queue the run's task for a worker (retried briefly; False if the broker stayed
    unreachable: the run stays queued and the sweeper dispatches it again)."""
    pause, waited = 0.1, 0.0
    while True:
        try:
            await sync_to_async(_send, thread_sensitive=False)(run_id)
            return True
        except Exception as exc:
            if waited >= DISPATCH_RETRY_SECONDS:
                logger.warning("run %s not dispatched to a worker yet: %s", run_id, exc)
                return False
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 2.0)
