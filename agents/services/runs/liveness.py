"""Runs whose executing process died: found and ended ``EXECUTOR_LOST`` within
``WINGMAN_EXECUTOR_LOST_SECONDS`` (30), so their sessions take new runs again.

A run's owner is alive when:

- it is on this host: its pid still exists (a SIGKILLed gateway or worker is seen at the
  next sweep, a few seconds, restart or not);
- it is on another host: it refreshed the run's ``heartbeat_at`` recently (every few
  seconds while the run executes; it may miss a few under load).

Liveness is read from the database, never only from the cache: after a Redis restart
every cache key is gone, and a cache-based check would end every live run.

Every gateway process and every worker sweeps (``sweep_forever``, started with the process);
the conditional update in ``transitions.finish`` lets exactly one of them end a lost run
and publish its terminal event. Celery runs that no worker claimed are dispatched again
(claiming is atomic, so a duplicate task is harmless), and given up as lost once even their
timeout has passed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import timedelta

import psutil
from django.conf import settings
from django.utils import timezone

from agents import selectors
from agents.models import Run, RunStatus
from agents.services.runs.accept import OPEN_STATUSES, Owner
from agents.services.runs.requests import DEFAULT_TIMEOUT_SECONDS
from agents.services.runs.transitions import finish
from gateway.delivery import publish
from gateway.protocol.errors import ErrorCode
from gateway.state import outage
from gateway.state.db import db_call

logger = logging.getLogger(__name__)

EXECUTOR_LOST = str(ErrorCode.EXECUTOR_LOST)
HOST = socket.gethostname()


def lost_seconds() -> float:
    return float(settings.WINGMAN_EXECUTOR_LOST_SECONDS)


def heartbeat_seconds() -> float:
    """How often executing processes refresh their runs (a third of the staleness bound)."""
    return max(0.5, lost_seconds() * 0.8 / 3)


def sweep_seconds() -> float:
    return max(0.5, lost_seconds() / 6)


def this_process(seat_id: str) -> Owner:
    return Owner(seat_id=seat_id, host=HOST, pid=os.getpid())


def owner_alive(run: Run, me: str) -> bool:
    """Is the process executing ``run`` still there? (unclaimed runs count as alive)."""
    if not run.owner or run.owner == me:
        return True
    if run.owner_host == HOST and run.owner_pid:
        return psutil.pid_exists(run.owner_pid)
    stale = timezone.now() - timedelta(seconds=lost_seconds() * 0.8)
    return run.heartbeat_at is not None and run.heartbeat_at > stale


def end_lost(run: Run, why: str | None = None) -> Run | None:
    """End a run whose executor is gone (None if it ended meanwhile)."""
    why = why or lost_reason(run)
    logger.warning("run %s lost: %s", run.id, why)
    return finish(run.id, RunStatus.ERROR, "", why, EXECUTOR_LOST, owner=run.owner)


def lost_reason(run: Run) -> str:
    where = f"{run.owner_host} pid {run.owner_pid}" if run.owner_pid else f"seat {run.owner}"
    return f"the process executing the run ({where}) stopped before the run ended"


def sweep(me: str) -> tuple[list[Run], list[str]]:
    """Runs of dead executors ended now, and Celery runs to dispatch again."""
    ended, redispatch = [], []
    now = timezone.now()
    for run in Run.objects.filter(status__in=OPEN_STATUSES).select_related("session"):
        if run.owner:
            if not owner_alive(run, me) and (done := end_lost(run)):
                ended.append(done)
            continue
        waited = (now - (run.heartbeat_at or run.created_at)).total_seconds()
        if waited < lost_seconds():
            continue
        give_up = (run.timeout or DEFAULT_TIMEOUT_SECONDS) + lost_seconds()
        if (now - run.created_at).total_seconds() > give_up:
            done = end_lost(run, "no worker took the run (is `celery -A wingman worker` running?)")
            ended += [done] if done else []
        elif Run.objects.filter(pk=run.id, owner="", heartbeat_at=run.heartbeat_at).update(
            heartbeat_at=now
        ):
            redispatch.append(run.id)
    return ended, redispatch


async def publish_end(run: Run) -> None:
    """The terminal event of a run ended here on its executor's behalf."""
    from agents.services.runs.stream import session_topic

    payload = selectors.run_terminal_event(run)
    await publish.publish_topic(session_topic(run.session.key), "agent", payload, key=run.id)


async def sweep_once(me: str) -> int:
    """One sweep: end lost runs (publishing their end), dispatch unclaimed ones again."""
    from agents.services.runs import dispatch

    ended, redispatch = await db_call(sweep)(me)
    for run in ended:
        await publish_end(run)
    for run_id in redispatch:
        logger.info("run %s: no worker claimed it yet; dispatching it again", run_id)
        await dispatch.send_to_worker(run_id)
    return len(ended)


async def sweep_forever() -> None:
    """Every ``sweep_seconds`` (the first at once), for the life of the process."""
    from gateway.delivery.seat import current_seat

    while True:
        seat = current_seat()
        try:
            await sweep_once(seat.id if seat else "")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if outage.is_outage(exc):
                outage.redis_state.failed(exc, "sweeping lost runs")
            else:
                logger.exception("sweeping lost runs failed")
        await asyncio.sleep(sweep_seconds())
