"""One gateway per state dir: a running gateway holds ``$STATE_DIR/gateway.lock``.

``wingman gateway run`` (foreground or as the daemon's child) takes an exclusive
``flock`` on the file before it touches anything (migrations, config import, run
recovery) and keeps it for the life of the process; the kernel releases it when the
process ends, even on SIGKILL, so a crash never leaves a stale lock. The file says who
holds it (pid, then the address once listening): ``gateway status`` / ``start`` / ``stop``
read it, so they know a foreground gateway too, not only the daemon's PID file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_NAME = "gateway.lock"
_ATTEMPTS = 5

#: The lock this process holds (kept open, hence held, until the process exits).
_held: IO[str] | None = None


@dataclass(frozen=True)
class Holder:
    """The gateway holding a state dir (``pid`` None if it has not written it yet)."""

    pid: int | None
    address: str | None


class StateDirLocked(Exception):
    """Another gateway serves this state dir."""

    def __init__(self, state_dir: Path, holder: Holder) -> None:
        who = f"pid {holder.pid}" if holder.pid else "pid unknown"
        if holder.address:
            who += f", ws://{holder.address}/"
        super().__init__(
            f"state dir {state_dir} is in use by a running gateway ({who}); stop it first "
            "(wingman gateway stop) or use another WINGMAN_STATE_DIR"
        )
        self.holder = holder


def lock_path(state_dir: Path) -> Path:
    return state_dir / LOCK_NAME


def acquire(state_dir: Path) -> None:
    """Hold the state dir for this process, or raise :class:`StateDirLocked`."""
    global _held
    if _held is not None:
        return
    handle = lock_path(state_dir).open("a+", encoding="utf-8")
    # A few tries: ``holder()`` in another process takes the lock shared for an instant.
    for attempt in range(_ATTEMPTS):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt == _ATTEMPTS - 1:
                handle.close()
                found = holder(state_dir) or Holder(None, None)
                raise StateDirLocked(state_dir, found) from None
            time.sleep(0.02)
    _held = handle
    _write(handle, f"{os.getpid()}\n")


def record_address(address: str) -> None:
    """Add the listening address to the lock file (no-op if this process holds none)."""
    if _held is not None:
        _write(_held, f"{os.getpid()}\n{address}\n")


def _write(handle: IO[str], text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def holder(state_dir: Path) -> Holder | None:
    """The gateway holding ``state_dir``, or None when no process holds it."""
    try:
        handle = lock_path(state_dir).open(encoding="utf-8")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse(handle.read())
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def _parse(text: str) -> Holder:
    lines = text.split()
    pid = None
    with contextlib.suppress(ValueError, IndexError):
        pid = int(lines[0])
    return Holder(pid, lines[1] if len(lines) > 1 else None)
