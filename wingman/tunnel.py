"""SSH tunnels to and from a gateway with the system ``ssh`` client (keys / the SSH agent).

- :class:`Tunnel` runs ``ssh -N -L`` (forward: a remote gateway on a local port) or
  ``ssh -N -R`` (reverse: the local gateway on a port of the remote host) as a child process,
  waits until the forward is really up (ssh reports it, and for a forward tunnel a ``/health``
  through it answers) — never a fixed sleep — and stops it on exit.
- ssh's stderr is read line by line; :func:`explain` turns its failures (refused key, unknown
  or changed host key, unreachable host, port in use) into one clear sentence.

ssh runs with ``BatchMode=yes`` (never a password prompt) and ``ExitOnForwardFailure=yes``
(a forward that cannot be set up ends ssh instead of leaving a useless session).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

#: Seconds to wait for the tunnel to come up before giving up.
UP_TIMEOUT = 20.0
#: Seconds ssh gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0

_REMOTE_OK = re.compile(r"remote forward success for: listen (?:[^:\s]+:)?(\d+)")
_ALLOCATED = re.compile(r"Allocated port (\d+) for remote forward")

#: (pattern in ssh's stderr, explanation). The first match wins.
_FAILURES: tuple[tuple[str, str], ...] = (
    (
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host key verification failed: the host key of {host} CHANGED since it was recorded "
        "in known_hosts (possible man-in-the-middle); check it, then remove the old entry "
        "with ssh-keygen -R",
    ),
    (
        "Host key verification failed",
        "host key verification failed: {host}'s host key is not in known_hosts (connect once "
        "with `ssh` to check and record it, or pass -o StrictHostKeyChecking=accept-new)",
    ),
    (
        "Permission denied",
        "SSH authentication failed for {target}: the server accepted none of the offered keys "
        "(add the key to ssh-agent or pass --identity FILE; passwords are not asked)",
    ),
    ("Could not resolve hostname", "cannot resolve host {host}"),
    ("Connection refused", "cannot connect to {host}: connection refused (is sshd running?)"),
    ("Connection timed out", "cannot connect to {host}: connection timed out"),
    ("No route to host", "cannot connect to {host}: no route to host"),
    (
        "remote port forwarding failed",
        "the remote host refused the reverse forward (port already in use there, or "
        "AllowTcpForwarding/GatewayPorts forbid it)",
    ),
    ("Address already in use", "the local port is already in use (choose --local-port)"),
    ("Could not request local forwarding", "the local forward could not be set up"),
    ("Identity file", "the identity file cannot be read"),
)


class TunnelError(Exception):
    """The tunnel could not be set up (the message says why, in one sentence)."""


def explain(stderr: str, target: str) -> str | None:
    """One clear sentence for a failure found in ssh's stderr, or None."""
    host = target.rsplit("@", 1)[-1]
    for needle, message in _FAILURES:
        if needle in stderr:
            return message.format(host=host, target=target)
    return None


def free_local_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(base: str, timeout: float = 2.0) -> dict | None:
    """``GET <base>/health`` as JSON (also when 503: degraded), or None when unreachable."""
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return json.loads(exc.read())
        return None
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class Tunnel:
    """One ``ssh -N`` forward (``reverse=False``: -L) or reverse (-R) tunnel."""

    target: str
    remote_port: int
    local_port: int
    reverse: bool = False
    ssh_port: int | None = None
    identity: str | None = None
    options: list[str] = field(default_factory=list)
    ssh: str = "ssh"
    proc: subprocess.Popen[str] | None = None
    _lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def command(self) -> list[str]:
        """The ssh command line."""
        binary = shutil.which(self.ssh) or self.ssh
        cmd = [binary, "-N", "-v", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes"]
        cmd += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]
        if self.ssh_port:
            cmd += ["-p", str(self.ssh_port)]
        if self.identity:
            cmd += ["-i", self.identity, "-o", "IdentitiesOnly=no"]
        for option in self.options:
            cmd += ["-o", option]
        if self.reverse:
            cmd += ["-R", f"127.0.0.1:{self.remote_port}:127.0.0.1:{self.local_port}"]
        else:
            cmd += ["-L", f"127.0.0.1:{self.local_port}:127.0.0.1:{self.remote_port}"]
        return [*cmd, self.target]

    @property
    def url(self) -> str:
        """The gateway's WebSocket URL through a forward tunnel."""
        return f"ws://127.0.0.1:{self.local_port}/ws"

    def start(self, timeout: float = UP_TIMEOUT) -> Tunnel:
        """Start ssh and wait until the forward is up; TunnelError (ssh stopped) if not."""
        if shutil.which(self.ssh) is None:
            raise TunnelError(f"the ssh client ({self.ssh}) is not installed")
        self.proc = subprocess.Popen(  # noqa: S603 - our own argument list, no shell
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._pump, name="ssh-stderr", daemon=True)
        self._reader.start()
        try:
            self._await_up(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _pump(self) -> None:
        if self.proc is None or self.proc.stderr is None:
            return
        for line in self.proc.stderr:
            self._lines.append(line.rstrip("\n"))

    def stderr(self) -> str:
        """Everything ssh wrote to stderr so far."""
        return "\n".join(self._lines)

    def _await_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                if self._reader is not None:
                    self._reader.join(timeout=2)
                raise TunnelError(self.failure())
            if self._is_up():
                return
            time.sleep(0.1)
        raise TunnelError(
            f"the tunnel to {self.target} did not come up within {timeout:.0f}s"
            + (f" ({why})" if (why := explain(self.stderr(), self.target)) else "")
        )

    def _is_up(self) -> bool:
        text = self.stderr()
        if self.reverse:
            allocated = _ALLOCATED.search(text)
            if allocated:
                self.remote_port = int(allocated.group(1))
                return True
            return _REMOTE_OK.search(text) is not None
        if "Authenticated to" not in text:
            return False
        return health(f"http://127.0.0.1:{self.local_port}", timeout=1.0) is not None

    def failure(self) -> str:
        """Why ssh ended, in one sentence."""
        code = self.proc.returncode if self.proc else None
        why = explain(self.stderr(), self.target)
        if why:
            return why
        tail = [ln for ln in self._lines if not ln.startswith("debug")][-3:]
        detail = "; ".join(tail) or "no message"
        return f"ssh to {self.target} exited with code {code} ({detail})"

    def alive(self) -> bool:
        """Is ssh still running?"""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM ssh, SIGKILL after STOP_TIMEOUT; idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=2)

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:
    """In the ssh child: get SIGTERM when the wingman process dies (Linux), so even a killed
    wingman leaves no ssh behind; and ignore the terminal's Ctrl+C (wingman stops ssh)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
