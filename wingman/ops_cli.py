"""``wingman backup`` and ``wingman restore``: the state dir as one archive (wingman/backup.py)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: Same code as ``gateway run`` when another gateway holds the state dir.
EXIT_IN_USE = 4


def add_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser(
        "backup",
        help="write a consistent backup of the state dir (SQLite database + config) while "
        "the gateway runs; PostgreSQL: use pg_dump (README, Backups)",
    )
    p.add_argument("--out", help="archive to write (default ./wingman-backup-<UTC time>.tar.gz)")
    p.set_defaults(func=cmd_backup)

    p = top.add_parser(
        "restore",
        help="restore a backup into the state dir (refused while a gateway runs on it)",
    )
    p.add_argument("file", help="a .tar.gz written by `wingman backup`")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the database and files of a non-empty state dir",
    )
    p.add_argument("--state-dir", help="state dir to restore into (default WINGMAN_STATE_DIR)")
    p.set_defaults(func=cmd_restore, needs_django=False)


def add_install_service(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install-service",
        help="write and enable systemd units for the gateway, worker and beat (deploy/systemd/)",
    )
    p.add_argument("--user", action="store_true", help="user units (systemctl --user)")
    p.add_argument("--dry-run", action="store_true", help="print what it would do, do nothing")
    p.add_argument("--unit-dir", help="write the units here instead of systemd's directory")
    p.add_argument("--no-enable", action="store_true", help="write the units, do not enable them")
    p.set_defaults(func=cmd_install_service, needs_django=False)


def cmd_install_service(args: argparse.Namespace) -> int:
    import subprocess

    from wingman import service_units

    inst, unit_dir = service_units.for_this_install(args.user)
    if args.unit_dir:
        unit_dir = Path(args.unit_dir).expanduser().absolute()
    steps = service_units.plan(inst, unit_dir, enable=not args.no_enable)
    for step in steps:
        print(("would " if args.dry_run else "") + service_units.describe(step), flush=True)
    if args.dry_run:
        return EXIT_OK
    try:
        service_units.execute(steps)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"wingman: install-service: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"Installed {', '.join(service_units.UNITS)} in {unit_dir}; settings and secrets go in "
          f"{inst.env_file}")  # fmt: skip
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    from django.conf import settings

    from wingman import __version__
    from wingman.backup import PG_HINT, BackupError, create_backup

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        print(f"wingman: backup: {PG_HINT}", file=sys.stderr)
        return EXIT_USAGE
    cfg = settings.WINGMAN
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out or f"wingman-backup-{stamp}.tar.gz").expanduser().absolute()
    try:
        manifest = create_backup(
            state_dir=cfg.state_dir,
            db_path=Path(db["NAME"]),
            out=out,
            version=__version__,
            config_path=cfg.config_path,
        )
    except (BackupError, OSError) as exc:
        print(f"wingman: backup: {exc}", file=sys.stderr)
        return EXIT_FAIL
    rows = sum(manifest["tables"].values())
    print(
        f"Backup written to {out}: {len(manifest['tables'])} tables ({rows} rows), "
        f"{len(manifest['files'])} files, wingman {manifest['version']}"
    )
    return EXIT_OK


def _restore_target(args: argparse.Namespace) -> tuple[Path, Path]:
    """(state dir, SQLite file) to restore into; ConfigError for a PostgreSQL database."""
    from wingman.backup import PG_HINT
    from wingman.config import ConfigError, default_state_dir
    from wingman.database import database_config

    state_dir = (
        Path(args.state_dir).expanduser() if args.state_dir else default_state_dir()
    ).absolute()
    db = database_config(os.environ.get("DATABASE_URL", ""), state_dir / "wingman.sqlite3")
    if db["ENGINE"] != "django.db.backends.sqlite3":
        raise ConfigError(f"restore: {PG_HINT}")
    return state_dir, Path(db["NAME"]).absolute()


def cmd_restore(args: argparse.Namespace) -> int:
    from gateway.server import statelock
    from wingman.backup import BackupError, is_empty, restore_backup

    state_dir, db_path = _restore_target(args)
    if not args.force and (not is_empty(state_dir) or db_path.exists()):
        print(
            f"wingman: restore: state dir {state_dir} is not empty; restore into a fresh one "
            "or pass --force to replace its database and files",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        statelock.acquire(state_dir)  # held until this command ends: no gateway starts meanwhile
    except statelock.StateDirLocked as exc:
        print(f"wingman: restore refused: {exc}", file=sys.stderr)
        return EXIT_IN_USE
    try:
        done = restore_backup(
            archive=Path(args.file).expanduser(),
            state_dir=state_dir,
            db_path=db_path,
            force=args.force,
        )
    except (BackupError, OSError) as exc:
        print(f"wingman: restore: {exc}", file=sys.stderr)
        return EXIT_FAIL
    m = done.manifest
    print(
        f"Restored the backup of {m['created']} (wingman {m['version']}) into {state_dir}: "
        f"database {done.database}, {done.files} files"
    )
    return EXIT_OK
