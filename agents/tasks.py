"""Celery tasks of the agents app: interfaces that take ids and call the run service."""

from __future__ import annotations

from agents.services import runs
from agents.services.runs import dispatch
from gateway.server import worker
from wingman.celery import app


@app.task(
    name=dispatch.RUN_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_execute(run_id: str) -> None:
    """Execute an accepted run in this worker, streaming its events to every gateway.

    Delivered again after a worker died before acknowledging it: the run service claims a
    run once, so a second delivery ends a run whose worker died (``EXECUTOR_LOST``) or does
    nothing.
    """
    worker.run(lambda: runs.run_execute_claimed(run_id))
