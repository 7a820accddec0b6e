"""Django's PostgreSQL backend, with its connection health check skipped while the
connection has just answered.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection (a ``SELECT 1`` round trip)
before its first query after every ``close_old_connections()``, and channels' database
calls (``gateway/state/db.py``) run that before and after each call: one extra statement
per database call, ~6 per routine fire on a busy worker. Here a connection that answered
a query without an error less than ``FRESH_SECONDS`` ago is not checked again; one idle
longer is checked as before. A server that went away in those few seconds fails the next
query, as a query in flight would have; Django closes that connection after the call
(``errors_occurred``), and the next call connects afresh.
"""

from __future__ import annotations

import math
import time

from django.db.backends.postgresql import base

#: A connection that answered this recently is not health-checked before its next query.
FRESH_SECONDS = 2.0


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answered_at = -math.inf

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self.answered_at < FRESH_SECONDS
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self) -> None:
        # health_check_done: a cursor was taken since the last call here (a query ran, after
        # its check); without errors_occurred, the server answered it.
        if self.connection is not None and self.health_check_done and not self.errors_occurred:
            self.answered_at = time.monotonic()
        super().close_if_unusable_or_obsolete()
