"""Log formats: ``WINGMAN_LOG_FORMAT=json`` writes one JSON object per line for log shippers
(time, level, logger, message, and connId/runId/sessionKey where known); the default is
human-readable text."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from gateway.state import logcontext

#: LogRecord extras (``logger.info(..., extra={"runId": ...})``) copied into the object.
EXTRA_KEYS = ("connId", "runId", "sessionKey")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(logcontext.current())
        for key in EXTRA_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def log_format(value: str) -> str:
    """``WINGMAN_LOG_FORMAT``: ``text`` (default) or ``json``."""
    from wingman.config import ConfigError

    name = (value or "text").strip().lower()
    if name not in ("text", "json"):
        raise ConfigError(f"WINGMAN_LOG_FORMAT: expected text or json, got {value!r}")
    return name
