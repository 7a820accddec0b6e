"""The PostgreSQL backend skips Django's health check for a connection that has just
answered, and checks one that has been idle (``gateway/state/postgresql/base.py``), on the
real server: the connection's server process is terminated between two calls."""

from __future__ import annotations

import time
from collections.abc import Iterator

import environ
import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from gateway.state.postgresql.base import FRESH_SECONDS, DatabaseWrapper
from tests.conftest import _database, _pg_admin


@pytest.fixture
def wrapper(django_db_blocker) -> Iterator[DatabaseWrapper]:
    """A connection of its own to a new database (not the test database's)."""
    for url in _database():
        config = environ.Env.db_url_config(url) | {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}
        config["ENGINE"] = "gateway.state.postgresql"
        conn = ConnectionHandler({"default": config})["default"]
        try:
            with django_db_blocker.unblock():
                yield conn
        finally:
            conn.close()


def _call(conn: DatabaseWrapper) -> int:
    """One database call as channels makes it: connections tidied before and after."""
    conn.close_if_unusable_or_obsolete()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        conn.close_if_unusable_or_obsolete()


def _terminate(pid: int) -> None:
    with _pg_admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # bounded: until the server process is gone
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.02)
    raise AssertionError(f"server process {pid} did not end")


def test_a_connection_that_just_answered_is_not_checked_first(wrapper):
    assert isinstance(wrapper, DatabaseWrapper)
    pid = _call(wrapper)
    assert _call(wrapper) == pid  # persistent
    _terminate(pid)
    # No health check before this query (it would have seen the dead connection and
    # reconnected): the query fails, as one in flight would have.
    with pytest.raises(OperationalError):
        _call(wrapper)
    # The failed connection was closed after that call: the next one connects afresh.
    assert _call(wrapper) != pid


def test_an_idle_connection_is_checked_and_replaced(wrapper):
    pid = _call(wrapper)
    _terminate(pid)
    time.sleep(FRESH_SECONDS + 0.1)
    assert _call(wrapper) != pid  # the check saw it dead: a new connection, no error
