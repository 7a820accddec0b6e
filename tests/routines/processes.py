"""A real ``celery -A wingman beat`` process for the scaled end-to-end tests."""

from __future__ import annotations

import re
import sys

from tests.gateway.gateway_process import START_TIMEOUT, GatewayProcess

BEAT_READY_RE = re.compile(r"beat: Starting\.\.\.")


class BeatProcess(GatewayProcess):
    """``celery -A wingman beat`` (the scheduler from settings: ``RoutineScheduler``) with
    a gateway's environment; ready once it logs ``beat: Starting...``."""

    def start(self, timeout: float = START_TIMEOUT) -> BeatProcess:
        cmd = [sys.executable, "-m", "celery", "-A", "wingman", "beat", "--loglevel", "INFO"]
        schedule = str(self.state_dir / "celerybeat-schedule")  # unused by the DB scheduler
        self._spawn([*cmd, "-s", schedule, "--pidfile", ""])
        self._await_line(
            lambda line: bool(BEAT_READY_RE.search(line)), "'Starting' line", "ready", timeout
        )
        return self
