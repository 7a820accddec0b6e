"""A real OpenSSH server for the tunnel tests: ``sshd -D`` on a free loopback port with a
temporary host key, an authorized client key and a known_hosts file that records the host key.

Missing sshd (Debian's openssh-server; tests/run.sh installs it when root) skips the tests
with a reason, and fails them under CI=true.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway.gateway_process import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
START_TIMEOUT = 10.0


def require_sshd() -> None:
    """Skip (or fail under CI=true) when sshd / ssh / ssh-keygen are not installed."""
    missing = [b for b in (SSHD, "ssh", "ssh-keygen") if not (os.path.exists(b) or shutil.which(b))]
    if missing:
        why = f"OpenSSH not installed ({', '.join(missing)}): apt-get install openssh-server"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def keygen(path: Path) -> Path:
    """A new passphrase-less ed25519 key pair at ``path`` (+ ``.pub``)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


@dataclass
class SshServer:
    """One running sshd; ``ssh_options`` make a client trust exactly its host key."""

    proc: subprocess.Popen[str]
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    log: Path

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1"

    def ssh_options(self) -> list[str]:
        """``--ssh-option`` values: only our known_hosts, strict checking, no user config."""
        return [
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "IdentitiesOnly=yes",
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_sshd(root: Path) -> SshServer:
    """sshd on 127.0.0.1:<free port> with keys under ``root``; waits until it accepts."""
    root.mkdir(parents=True, exist_ok=True)
    host_key = keygen(root / "host_key")
    client_key = keygen(root / "client_key")
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                "PidFile none",
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding yes",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    known_hosts = root / "known_hosts"
    pub = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation dir sshd requires
    log = root / "sshd.log"
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
    )
    server = SshServer(proc, port, getpass.getuser(), client_key, known_hosts, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited with {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"sshd did not accept within {START_TIMEOUT}s: {log.read_text()}")


def ssh_children(pid: int) -> list[int]:
    """PIDs of ``ssh`` processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            stat = (entry / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == pid and name == "ssh":
                found.append(int(entry.name))
    return found


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live (not zombie) process?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def ssh_clients_of(port: int) -> list[int]:
    """PIDs of live ``ssh`` clients whose command line names ``-p <port>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            named = argv and argv[0].endswith(b"ssh") and str(port).encode() in argv
            if named and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found
