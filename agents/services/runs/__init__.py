"""The one run service: every source (WebSocket, REST, CLI, routines, webhooks, rooms)
starts agent runs through :func:`run_start`.

A run: route → session → persist the run and the user message → hand it to an executor
(this process's event loop, or a Celery worker: ``dispatch.py``) → wait for the session's
turn (one run per session at a time, decided in the database; later requests queue) →
stream the agent → persist the answer and the final status → exactly one terminal event
(``agent-complete`` | ``agent-error`` | ``agent-cancelled``), even on cancel, timeout, crash,
shutdown, or the death of the process executing it (``liveness.py``: ``EXECUTOR_LOST``).

- ``requests.py``: RunRequest, RunTicket, RunPlan, final_result
- ``accept.py``: routing and persisting (idempotent)
- ``transitions.py``: the run's state changes in the database (turns, claims, the end)
- ``execute.py``: one run from its turn to its end
- ``local.py``: the runs executing in this process
- ``dispatch.py``: the executor choice; sending a run to a worker
- ``start.py``: ``run_start``; what a worker does with a run
- ``control.py``: wait, follow, cancel, replay from any process
- ``liveness.py``: lost executors, the sweeper
- ``stream.py``: one run's events and its bounded replay
"""

from agents.services.runs.control import (
    run_cancel,
    run_ended,
    run_follow,
    run_get,
    run_replay,
    run_wait,
)
from agents.services.runs.liveness import EXECUTOR_LOST, sweep_forever, sweep_once
from agents.services.runs.requests import RunPlan, RunRequest, RunTicket, final_result
from agents.services.runs.start import run_execute_claimed, run_start
from agents.services.runs.stream import RunStream, room_topic, session_topic

__all__ = [
    "EXECUTOR_LOST",
    "RunPlan",
    "RunRequest",
    "RunStream",
    "RunTicket",
    "final_result",
    "room_topic",
    "run_cancel",
    "run_ended",
    "run_execute_claimed",
    "run_follow",
    "run_get",
    "run_replay",
    "run_start",
    "run_wait",
    "session_topic",
    "sweep_forever",
    "sweep_once",
]
