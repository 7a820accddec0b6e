"""Background gateway: start/stop/status with a PID file and a log file in the state dir."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.server import statelock

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class PidInfo:
    pid: int
    address: str | None


def pid_path(state_dir: Path) -> Path:
    return state_dir / "gateway.pid"


def log_path(state_dir: Path) -> Path:
    return state_dir / "logs" / "wingman.log"


def read_pid(state_dir: Path) -> PidInfo | None:
    try:
        lines = pid_path(state_dir).read_text(encoding="utf-8").split()
        return PidInfo(int(lines[0]), lines[1] if len(lines) > 1 else None)
    except (FileNotFoundError, ValueError, IndexError):
        return None


def is_gateway_process(pid: int) -> bool:
    """Alive, and a wingman gateway (not an unrelated process that reused the PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the signal check
    return b"wingman" in cmdline or b"manage.py" in cmdline


@dataclass(frozen=True)
class Status:
    state: str  # "running" | "stopped" | "stale"
    info: PidInfo | None = None
    #: Running, but not as the daemon: a ``wingman gateway run`` in some terminal.
    foreground: bool = False


def status(state_dir: Path) -> Status:
    """The gateway holding the state dir (gateway/server/statelock.py), else the PID file's."""
    holder = statelock.holder(state_dir)
    if holder is not None:
        daemon = read_pid(state_dir)
        info = PidInfo(holder.pid or 0, holder.address)
        return Status("running", info, foreground=daemon is None or daemon.pid != holder.pid)
    info = read_pid(state_dir)
    if info is None:
        if pid_path(state_dir).exists():
            return Status("stale")
        return Status("stopped")
    if is_gateway_process(info.pid):
        return Status("running", info)
    return Status("stale", info)


def clear_stale(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        pid_path(state_dir).unlink()


def start(state_dir: Path, run_args: list[str]) -> tuple[int, str]:
    """Spawn ``wingman gateway run`` detached; wait until it listens. Returns (pid, address)."""
    log = log_path(state_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WINGMAN_PID_FILE": str(pid_path(state_dir))}
    with log.open("ab") as out:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "wingman", "gateway", "run", *run_args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(
                f"gateway exited with code {child.returncode}; see {log}\n{tail(log)}"
            )
        info = read_pid(state_dir)
        if info is not None and info.pid == child.pid:
            return child.pid, info.address or "?"
        time.sleep(0.1)
    child.terminate()
    raise RuntimeError(f"gateway did not start within {START_TIMEOUT:.0f}s; see {log}\n{tail(log)}")


def stop(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM (graceful drain), then SIGKILL after ``timeout``. True if it stopped gracefully."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return False


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
