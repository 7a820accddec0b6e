"""``wingman gateway tunnel`` against a real sshd on loopback (tests/wingman/sshd.py) and a
real gateway: forward and reverse tunnels carry an agent run; Ctrl+C / SIGTERM leave no ssh
process behind; a refused key and an unknown host key are reported in one clear line."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.agents.test_e2e_agents import write_agents_config
from tests.gateway.gateway_process import (
    REPO,
    TOKEN,
    GatewayProcess,
    free_port,
    gateway_env,
    run_cli,
    wingman_command,
)
from tests.wingman.sshd import (
    keygen,
    pid_alive,
    require_sshd,
    ssh_children,
    ssh_clients_of,
    start_sshd,
)

pytestmark = pytest.mark.e2e

UP_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    require_sshd()
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    state = tmp_path_factory.mktemp("gw")
    write_agents_config(state, [{"id": "main", "default": True, "model": "wingman:echo"}])
    gw = GatewayProcess(state, name="remote-gateway").start()
    yield gw
    gw.stop()


class Cli:
    """A long-running ``wingman gateway tunnel`` subprocess whose stdout is read in a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*wingman_command(), "gateway", "tunnel", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def await_line(self, needle: str, timeout: float = UP_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f"tunnel exited {self.proc.returncode}: {self.seen} {self.proc.stderr.read()}"
                )
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no {needle!r} within {timeout}s: {self.seen}")

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def client_env(tmp_path: Path, **extra: str | None) -> dict[str, str]:
    """A CLI environment of its own (the gateway token, no developer SSH agent)."""
    return gateway_env(tmp_path / "client-state", {"SSH_AUTH_SOCK": None, **extra})


def ssh_flags(sshd, *, identity: Path | None = None, agent: bool = False) -> list[str]:
    flags = ["--ssh-port", str(sshd.port)]
    options = sshd.ssh_options()
    if agent:  # keys come from the agent only
        options = [o for o in options if not o.startswith("IdentitiesOnly")]
    for option in options:
        flags += ["-o", option]
    if identity is not None:
        flags += ["--identity", str(identity)]
    return flags


def run_agent(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        ["agent", "hello through ssh", "--gateway", url, "--token", TOKEN],
        client_env(tmp_path),
    )


def assert_no_ssh_left(pid: int, ssh_pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in ssh_pids):
        time.sleep(0.05)
    assert not [p for p in ssh_pids if pid_alive(p)], f"ssh left behind: {ssh_pids}"


@pytest.fixture
def ssh_agent(tmp_path):
    """A real ssh-agent on a socket of its own holding the authorized key."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sock.exists(), "ssh-agent did not create its socket"
    yield sock
    proc.terminate()
    proc.wait(timeout=5)


def test_forward_tunnel_with_the_ssh_agent_carries_an_agent_run_and_ctrl_c_cleans_up(
    sshd, gateway, ssh_agent, tmp_path
):
    env = client_env(tmp_path, SSH_AUTH_SOCK=str(ssh_agent))
    added = subprocess.run(
        ["ssh-add", str(sshd.client_key)], env=env, capture_output=True, timeout=10, check=False
    )
    assert added.returncode == 0, added.stderr
    local = free_port()
    cli = Cli(
        [
            sshd.target,
            "--port",
            str(gateway.port),
            "--local-port",
            str(local),
            "--name",
            "lap",
            *ssh_flags(sshd, agent=True),
        ],
        env,
    )
    try:
        up = cli.await_line("Tunnel up")
        assert f"ws://127.0.0.1:{local}/ws" in up and "connected through it" in up
        ssh_pids = ssh_children(cli.proc.pid)
        assert len(ssh_pids) == 1, ssh_pids
        assert ssh_clients_of(sshd.port) == ssh_pids
        result = run_agent(f"ws://127.0.0.1:{local}/ws", tmp_path)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "You said: hello through ssh" in result.stdout
        assert cli.stop(signal.SIGINT) == 130
        assert_no_ssh_left(cli.proc.pid, ssh_pids)
        assert ssh_clients_of(sshd.port) == []
    finally:
        cli.kill()


def test_reverse_tunnel_exposes_the_local_gateway_and_sigterm_cleans_up(sshd, gateway, tmp_path):
    remote = free_port()
    cli = Cli(
        [
            "reverse",
            sshd.target,
            "--port",
            str(gateway.port),
            "--remote-port",
            str(remote),
            *ssh_flags(sshd, identity=sshd.client_key),
        ],
        client_env(tmp_path),
    )
    try:
        up = cli.await_line("Reverse tunnel up")
        assert f"ws://127.0.0.1:{remote}/ws" in up
        ssh_pids = ssh_children(cli.proc.pid)
        assert len(ssh_pids) == 1, ssh_pids
        result = run_agent(f"ws://127.0.0.1:{remote}/ws", tmp_path)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "You said: hello through ssh" in result.stdout
        assert cli.stop(signal.SIGTERM) == 130
        assert_no_ssh_left(cli.proc.pid, ssh_pids)
    finally:
        cli.kill()


def test_a_key_the_server_does_not_accept_is_a_clear_auth_error(sshd, gateway, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    result = run_cli(
        [
            "gateway",
            "tunnel",
            sshd.target,
            "--port",
            str(gateway.port),
            *ssh_flags(sshd, identity=stranger),
        ],
        client_env(tmp_path),
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "SSH authentication failed for" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert ssh_clients_of(sshd.port) == []


def test_an_unknown_host_key_is_a_clear_host_key_error(sshd, gateway, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    flags = ssh_flags(sshd, identity=sshd.client_key)
    flags = [
        f"UserKnownHostsFile={empty}" if f.startswith("UserKnownHostsFile") else f for f in flags
    ]
    result = run_cli(
        ["gateway", "tunnel", sshd.target, "--port", str(gateway.port), *flags],
        client_env(tmp_path),
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "host key verification failed" in result.stderr, result.stderr
    assert "not in known_hosts" in result.stderr, result.stderr


def test_reverse_without_a_local_gateway_is_refused_before_ssh(sshd, tmp_path):
    result = run_cli(
        [
            "gateway",
            "tunnel",
            "reverse",
            sshd.target,
            "--port",
            str(free_port()),
            *ssh_flags(sshd, identity=sshd.client_key),
        ],
        client_env(tmp_path),
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "no gateway answers on 127.0.0.1:" in result.stderr


def test_usage_error_for_a_bad_target(tmp_path):
    result = run_cli(["gateway", "tunnel", "sideways", "a@b"], client_env(tmp_path))
    assert result.returncode == 2
    assert "usage: wingman gateway tunnel [reverse] user@host" in result.stderr
    assert result.stdout == ""


def test_a_wrong_gateway_token_through_the_tunnel_is_reported_and_ssh_stopped(
    sshd, gateway, tmp_path
):
    result = run_cli(
        [
            "gateway",
            "tunnel",
            sshd.target,
            "--port",
            str(gateway.port),
            "--token",
            "wrong",
            *ssh_flags(sshd, identity=sshd.client_key),
        ],
        client_env(tmp_path),
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "wingman: tunnel is up but the gateway refused: UNAUTHORIZED" in result.stderr
    assert "Tunnel up" not in result.stdout
    assert ssh_clients_of(sshd.port) == []


def test_a_changed_host_key_is_a_clear_host_key_error(sshd, gateway, tmp_path):
    other = keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text().split()
    recorded = tmp_path / "known_hosts"
    recorded.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    flags = [
        f"UserKnownHostsFile={recorded}" if f.startswith("UserKnownHostsFile") else f
        for f in ssh_flags(sshd, identity=sshd.client_key)
    ]
    result = run_cli(
        ["gateway", "tunnel", sshd.target, "--port", str(gateway.port), *flags],
        client_env(tmp_path),
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "the host key of 127.0.0.1 CHANGED" in result.stderr, result.stderr
    assert ssh_clients_of(sshd.port) == []
