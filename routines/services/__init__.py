"""The routines services: every write to routines (and to their django-celery-beat rows)
goes through these keyword-only functions (see each module's docstring for its contract).

- ``routines.py``: ``routine_create``, ``routine_update``, ``routine_set_enabled``,
  ``routine_delete`` (validation errors keyed by field, NOT_FOUND, CONFLICT on a stale
  ``expected_revision``)
- ``fire.py``: ``routine_fire`` (what beat's task calls), ``routine_run_now``
- ``settle.py``: the end of a routine's run (last-run fields, error count, auto-disable)
- ``beat.py``: the only writer of PeriodicTask and its schedule rows
- ``transfer.py``: ``routines_import``, ``routines_export`` (``routines.json``)
- ``events.py``: the ``routine`` event, after commit
"""

from routines.services.fire import FireResult, routine_fire, routine_run_now
from routines.services.routines import (
    routine_create,
    routine_delete,
    routine_set_enabled,
    routine_update,
)
from routines.services.transfer import (
    ImportResult,
    RoutinesFileError,
    routines_export,
    routines_export_file,
    routines_import,
)

__all__ = [
    "FireResult",
    "ImportResult",
    "RoutinesFileError",
    "routine_create",
    "routine_delete",
    "routine_fire",
    "routine_run_now",
    "routine_set_enabled",
    "routine_update",
    "routines_export",
    "routines_export_file",
    "routines_import",
]
