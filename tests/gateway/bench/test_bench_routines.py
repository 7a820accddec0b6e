"""``wingman gateway bench --mode routines`` leaves no state dir behind (each setup's
``wingman-bench-routines-*`` under the temp dir), whether it ran or failed, unless asked
to keep it. (A run that measures ends in the same ``finally`` of ``_state_dir``; a real one
waits for the next whole minute, too long for the suite: run the bench itself.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: A PostgreSQL server that is not there (nothing listens on port 1): the scaled setup
#: fails before it starts anything (Redis is never used).
NO_DATABASE = "postgres://postgres@127.0.0.1:1/postgres"
NO_REDIS = "redis://127.0.0.1:1/0"


def _bench(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WINGMAN_", "DJANGO_"))}
    env |= {"TMPDIR": str(tmp), "REDIS_URL": NO_REDIS, "DATABASE_URL": NO_DATABASE}
    return subprocess.run(
        [sys.executable, "-m", "wingman", "gateway", "bench", "--mode", "routines", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _left(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("wingman-bench-routines-*"))


def test_a_failed_scaled_run_removes_its_state_dir(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--setup", "scaled")
    assert done.returncode == 1, done.stderr
    assert "could not create the bench database" in done.stderr, done.stderr
    assert _left(tmp_path) == []


def test_keep_state_keeps_it_and_says_where(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--setup", "scaled", "--keep-state")
    assert done.returncode == 1, done.stderr
    left = _left(tmp_path)
    assert len(left) == 1 and left[0].is_dir(), left
    assert f"bench state kept in {left[0]}" in done.stderr, done.stderr
