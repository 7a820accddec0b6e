"""Migrations at start, once: several gateways (or a ``migrate`` service) starting together on
one database take a lock around ``migrate`` (a PostgreSQL advisory lock, a file lock beside a
SQLite database), so one applies the migrations and the others find them applied. A database
already migrated by a newer version (applied migrations this code does not have) is refused
instead of served half-upgraded."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from wingman.config import ConfigError

#: The advisory lock key of ``migrate`` (any constant shared by every wingman process).
ADVISORY_KEY = 0x57494E47  # "WING"


class NewerSchema(ConfigError):
    """The database has migrations this version does not know: a newer one upgraded it
    (a ConfigError: any command that meets it says so in one line, exit 2)."""

    def __init__(self, unknown: list[tuple[str, str]]) -> None:
        names = ", ".join(f"{app}.{name}" for app, name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        super().__init__(
            f"the database was migrated by a newer wingman (unknown migrations: {names}{more}); "
            "run that version or a newer one, or restore a backup taken before the upgrade"
        )
        self.unknown = unknown


@contextlib.contextmanager
def _locked(connection) -> Iterator[None]:
    """Hold the migration lock of ``connection``'s database (blocking until it is free)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
        return
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or name == ":memory:" or name.startswith("file:"):
        yield
        return
    with Path(f"{name}.migrate-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when closed (or the process dies)
        yield


def unknown_applied(connection) -> list[tuple[str, str]]:
    """Migrations recorded as applied in the database that this code does not have."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    applied = loader.applied_migrations or {}
    return sorted(key for key in applied if key not in loader.disk_migrations)


def migrate_once() -> int:
    """Apply the migrations under the lock; how many were applied (0: already up to date).
    Raises :class:`NewerSchema` (nothing applied) for a database of a newer version."""
    from django.core.management import call_command
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections["default"]
    with _locked(connection):
        unknown = unknown_applied(connection)
        if unknown:
            raise NewerSchema(unknown)
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            call_command("migrate", interactive=False, verbosity=0)
        return len(plan)
