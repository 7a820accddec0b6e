"""``DATABASE_URL`` → Django's ``DATABASES["default"]``, and the check that its driver loads.

Both raise :class:`~wingman.config.ConfigError` with one line naming ``DATABASE_URL``; the
URL itself is never repeated (it may carry a password), only its scheme.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import environ

from wingman.config import ConfigError

EXAMPLES = "e.g. postgres://user@127.0.0.1:5432/wingman or sqlite:////path/to/db.sqlite3"


def database_config(url: str, default_sqlite: Path) -> dict[str, Any]:
    """The database settings of ``url`` (SQLite at ``default_sqlite`` when it is empty)."""
    if not url:
        url = f"sqlite:///{default_sqlite}"
    if "://" not in url:
        raise ConfigError(f"DATABASE_URL: not a database URL ({EXAMPLES})")
    try:
        config = environ.Env.db_url_config(url)
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL: {exc}") from exc
    if not _exists(config.get("ENGINE") or ""):
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"DATABASE_URL: unknown database scheme {scheme}:// ({EXAMPLES})")
    return config


def _exists(module: str) -> bool:
    """Is ``module`` importable? (without importing it)"""
    try:
        return bool(module) and importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def check_driver() -> None:
    """Import the configured database backend, and so its driver (e.g. psycopg), before
    ``django.setup()``: it would otherwise fail there, in a model import, as a traceback."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.db.utils import load_backend

    engine = settings.DATABASES["default"]["ENGINE"]
    try:
        load_backend(engine)
    except (ImproperlyConfigured, ImportError) as exc:
        name = engine.rsplit(".", 1)[-1]
        hint = "; pip install -r requirements/production.txt" if name == "postgresql" else ""
        reason = " ".join(str(exc).split())
        raise ConfigError(
            f"DATABASE_URL: the {name} database driver is not installed ({reason}){hint}"
        ) from exc
