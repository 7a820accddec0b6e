"""``wingman backup`` / ``wingman restore``: the state dir (SQLite database + files) as one
``.tar.gz`` with a manifest.

The database is copied with SQLite's online backup API (one read transaction: a consistent
snapshot, safe while a gateway writes in WAL mode), whatever tables it holds. The files are
everything else in the state dir (config, secret key, agent workspaces, outputs) except what
a running gateway makes for itself (lock, PID file, logs, collected static files).
PostgreSQL is backed up with ``pg_dump`` instead (README, "Backups").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = "wingman-backup/1"
MANIFEST = "manifest.json"
DB_MEMBER = "database/wingman.sqlite3"
FILES_PREFIX = "files/"
EXTERNAL_CONFIG = "config/wingman.config.json"
#: State-dir entries a gateway makes for itself: never backed up, never restored over.
SKIPPED = {"gateway.lock", "gateway.pid", "logs", "static"}
PG_HINT = (
    "the database is PostgreSQL: back it up with "
    '`pg_dump --format=custom --file=wingman.dump "$DATABASE_URL"` and restore it with '
    '`pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" wingman.dump` '
    '(README, "Backups")'
)


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line for the operator."""


@dataclass(frozen=True)
class Restored:
    """What a restore wrote."""

    manifest: dict[str, Any]
    files: int
    database: Path


def _db_files(db_path: Path) -> set[Path]:
    return {db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), Path(f"{db_path}-journal")}


def _state_files(state_dir: Path, db_path: Path) -> list[Path]:
    """The files of ``state_dir`` a backup carries (relative paths, sorted)."""
    skip = {p.resolve() for p in _db_files(db_path)}
    out: list[Path] = []
    for root, dirs, files in os.walk(state_dir):
        rel_root = Path(root).relative_to(state_dir)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in SKIPPED]
        for name in files:
            path = Path(root) / name
            if rel_root == Path(".") and name in SKIPPED:
                continue
            if path.resolve() in skip or path.is_symlink():
                continue
            out.append(path.relative_to(state_dir))
    return sorted(out)


def _snapshot(db_path: Path, dest: Path) -> None:
    """A consistent copy of the live database at ``db_path`` (SQLite backup API)."""
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path} (has a gateway ever run on this state dir?)")
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)  # all pages in one step: one read transaction, one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def _migrations(db_path: Path) -> dict[str, list[str]]:
    """The applied migrations recorded in a database file, by app."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        try:
            rows = conn.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()
        except sqlite3.DatabaseError:
            return {}
    out: dict[str, list[str]] = {}
    for app, name in rows:
        out.setdefault(app, []).append(name)
    return out


def _tables(db_path: Path) -> dict[str, int]:
    """Row counts of every table in a database file (for the manifest and checks)."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def create_backup(
    *,
    state_dir: Path,
    db_path: Path,
    out: Path,
    version: str,
    config_path: Path | None = None,
) -> dict[str, Any]:
    """Write the backup of ``state_dir`` (database at ``db_path``) to ``out``; its manifest."""
    files = _state_files(state_dir, db_path)
    external = None
    if config_path is not None and not config_path.resolve().is_relative_to(state_dir.resolve()):
        external = config_path
    with tempfile.TemporaryDirectory(prefix="wingman-backup-") as tmp:
        snap = Path(tmp) / "wingman.sqlite3"
        _snapshot(db_path, snap)
        manifest = {
            "format": FORMAT,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": {"engine": "sqlite", "source": str(db_path)},
            "migrations": _migrations(snap),
            "tables": _tables(snap),
            "files": [p.as_posix() for p in files],
            "externalConfig": str(external) if external else None,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            tar.add(snap, DB_MEMBER, recursive=False)
            for rel in files:
                tar.add(state_dir / rel, FILES_PREFIX + rel.as_posix(), recursive=False)
            if external is not None:
                tar.add(external, EXTERNAL_CONFIG, recursive=False)
        os.chmod(partial, 0o600)
        os.replace(partial, out)
    return manifest


def read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    """The manifest of an opened backup, checked to be one of ours."""
    try:
        member = tar.extractfile(MANIFEST)
        manifest = json.loads(member.read()) if member else None
    except (KeyError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: not a wingman backup (no {FORMAT} manifest)")
    return manifest


def _safe_rel(name: str) -> Path | None:
    """A member's path relative to the state dir, or None if it would leave it."""
    rel = PurePosixPath(name.removeprefix(FILES_PREFIX))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] in SKIPPED:
        return None
    return Path(*rel.parts)


def is_empty(state_dir: Path) -> bool:
    """Nothing worth keeping in ``state_dir`` (missing, or only a lock and an empty ``logs``)."""
    if not state_dir.exists():
        return True
    for entry in state_dir.iterdir():
        if entry.name == "logs" and entry.is_dir() and not any(entry.iterdir()):
            continue
        if entry.name in ("gateway.lock", "gateway.pid"):
            continue
        return False
    return True


def restore_backup(*, archive: Path, state_dir: Path, db_path: Path, force: bool) -> Restored:
    """Unpack ``archive`` into ``state_dir`` (database to ``db_path``)."""
    if not archive.is_file():
        raise BackupError(f"no such backup file: {archive}")
    if (not force and not is_empty(state_dir)) or (not force and db_path.exists()):
        raise BackupError(
            f"state dir {state_dir} is not empty; restore into a fresh one or pass --force "
            "to replace its database and files"
        )
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{archive}: not a readable backup ({exc})") from exc
    with tar:
        manifest = read_manifest(tar, archive)
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        if DB_MEMBER not in members:
            raise BackupError(f"{archive}: the backup has no database")
        bad = [n for n in members if n.startswith(FILES_PREFIX) and _safe_rel(n) is None]
        if bad:  # checked before anything is written
            raise BackupError(f"refusing a backup member outside the state dir: {bad[0]}")
        state_dir.mkdir(parents=True, exist_ok=True)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        partial = db_path.with_name(db_path.name + ".restoring")
        with tar.extractfile(members[DB_MEMBER]) as src, partial.open("wb") as dst:  # type: ignore[union-attr]
            shutil.copyfileobj(src, dst)
        _check_database(partial, archive)
        for stale in _db_files(db_path):
            stale.unlink(missing_ok=True)
        os.replace(partial, db_path)
        written = _restore_files(tar, members, state_dir)
    return Restored(manifest=manifest, files=written, database=db_path)


def _check_database(path: Path, archive: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        ok = str(exc)
    if ok != "ok":
        path.unlink(missing_ok=True)
        raise BackupError(f"{archive}: the database in the backup is damaged ({ok})")


def _restore_files(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], state_dir: Path
) -> int:
    written = 0
    for name, member in members.items():
        if name.startswith(FILES_PREFIX):
            rel = _safe_rel(name)
        elif name == EXTERNAL_CONFIG and not (state_dir / "wingman.config.json").exists():
            rel = Path("wingman.config.json")
        else:
            continue
        if rel is None:
            continue
        target = state_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with tar.extractfile(member) as src, target.open("wb") as dst:  # type: ignore[union-attr]
            shutil.copyfileobj(src, dst)
        os.chmod(target, member.mode & 0o777 or 0o600)
        written += 1
    return written
