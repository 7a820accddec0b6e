"""What a log line is about: the connection, run and session being handled, as context
variables (set by the WebSocket connection and the run executor, inherited by the tasks they
start) that the JSON log format (``WINGMAN_LOG_FORMAT=json``, wingman/logs.py) adds."""

from __future__ import annotations

from contextvars import ContextVar

conn_id: ContextVar[str | None] = ContextVar("wingman_conn_id", default=None)
run_id: ContextVar[str | None] = ContextVar("wingman_run_id", default=None)
session_key: ContextVar[str | None] = ContextVar("wingman_session_key", default=None)


def current() -> dict[str, str]:
    """The known ids of the current context, by their wire names (connId, runId, sessionKey)."""
    out = {}
    for name, var in (("connId", conn_id), ("runId", run_id), ("sessionKey", session_key)):
        value = var.get()
        if value:
            out[name] = value
    return out
