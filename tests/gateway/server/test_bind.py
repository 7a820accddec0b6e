"""``gateway.bind``: loopback | lan | tailnet | auto, ``--host`` winning, non-loopback binds
refused without auth, ``lan`` warned about without TLS; the Tailscale address read from a
(fake, at its unix-socket edge) tailscaled LocalAPI."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.gateway.gateway_process import REPO, gateway_env, run_cli, wingman_command
from tests.gateway.server.fake_tailscaled import FakeTailscaled, status
from wingman.config import ConfigError, load


@pytest.fixture
def sock_dir():
    # a short path: unix socket paths are limited to ~107 bytes
    with tempfile.TemporaryDirectory(prefix="ts-") as d:
        yield Path(d)


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {"WINGMAN_STATE_DIR": str(tmp_path), "WINGMAN_GATEWAY_TOKEN": "t0ken"}
    return {**base, **extra}


def test_loopback_is_the_default_and_lan_is_every_interface(tmp_path: Path) -> None:
    assert load(env(tmp_path)).host == "127.0.0.1"
    assert load(env(tmp_path, WINGMAN_BIND="lan")).host == "0.0.0.0"
    (tmp_path / "wingman.config.json").write_text(json.dumps({"gateway": {"bind": "lan"}}))
    cfg = load(env(tmp_path))
    assert (cfg.host, cfg.bind) == ("0.0.0.0", "lan")
    # --host (WINGMAN_HOST) still wins
    assert load(env(tmp_path, WINGMAN_HOST="127.0.0.1")).host == "127.0.0.1"


def test_non_loopback_bind_refused_without_auth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only allowed on a loopback host"):
        load({"WINGMAN_STATE_DIR": str(tmp_path), "WINGMAN_BIND": "lan"})


def test_unknown_bind_mode_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected loopback, lan, tailnet or auto"):
        load(env(tmp_path, WINGMAN_BIND="everywhere"))


def test_tailnet_and_auto_use_the_tailscale_address(tmp_path: Path, sock_dir: Path) -> None:
    path = sock_dir / "tailscaled.sock"
    with FakeTailscaled(path, status(["100.101.102.103", "fd7a:115c:a1e0::1"])) as fake:
        e = env(tmp_path, WINGMAN_TAILSCALE_SOCKET=str(path))
        assert load({**e, "WINGMAN_BIND": "tailnet"}).host == "100.101.102.103"
        assert load({**e, "WINGMAN_BIND": "auto"}).host == "100.101.102.103"
        assert fake.requests == ["/localapi/v0/status"] * 2
    with FakeTailscaled(path.with_name("stopped.sock"), status([], state="Stopped")):
        e = env(tmp_path, WINGMAN_TAILSCALE_SOCKET=str(path.with_name("stopped.sock")))
        assert load({**e, "WINGMAN_BIND": "auto"}).host == "127.0.0.1"
        with pytest.raises(ConfigError, match="'tailnet' needs Tailscale up"):
            load({**e, "WINGMAN_BIND": "tailnet"})


def test_tailnet_without_tailscale_is_a_clear_error(tmp_path: Path, sock_dir: Path) -> None:
    e = env(tmp_path, WINGMAN_TAILSCALE_SOCKET=str(sock_dir / "absent.sock"))
    assert load({**e, "WINGMAN_BIND": "auto"}).host == "127.0.0.1"
    with pytest.raises(ConfigError, match="tailscale up"):
        load({**e, "WINGMAN_BIND": "tailnet"})


def test_gateway_run_binds_the_tailnet_address(tmp_path: Path, sock_dir: Path) -> None:
    """A real gateway on --bind tailnet listens on the address tailscaled names only."""
    path = sock_dir / "tailscaled.sock"
    with FakeTailscaled(path, status(["127.0.0.2"])):
        e = gateway_env(tmp_path, {"WINGMAN_TAILSCALE_SOCKET": str(path), "WINGMAN_PORT": "0"})
        proc = subprocess.Popen(
            [*wingman_command(), "gateway", "run", "--bind", "tailnet"],
            cwd=REPO,
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            lines = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if "listening on" in line:
                    break
            out = "".join(lines)
            assert "listening on ws://127.0.0.2:" in out, out
            assert "without TLS" not in out, out  # 127.0.0.2 is loopback: no warning
        finally:
            proc.terminate()
            proc.wait(15)


def test_gateway_run_refuses_lan_without_auth(tmp_path: Path) -> None:
    e = gateway_env(tmp_path, {"WINGMAN_GATEWAY_TOKEN": None, "WINGMAN_PORT": "0"})
    done = run_cli(["gateway", "run", "--bind", "lan"], e)
    assert done.returncode != 0
    assert "only allowed on a loopback host" in done.stderr + done.stdout
