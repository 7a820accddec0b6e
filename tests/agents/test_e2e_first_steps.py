"""The README's first steps on a fresh state dir, as a new user runs them: a real gateway
(no ``wingman init``, no config file) and the ``wingman agent`` CLI against it."""

from __future__ import annotations

import pytest

from tests.gateway.gateway_process import GatewayProcess, gateway_env, run_cli

pytestmark = pytest.mark.e2e


def test_fresh_state_dir_agent_lists_files_with_the_readme_command(gateway: GatewayProcess):
    assert not (gateway.state_dir / "wingman.config.json").exists()
    folder = gateway.state_dir / "outputs" / "main"  # main's working folder (README)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("first steps\n")
    env = gateway_env(gateway.state_dir, {"WINGMAN_PORT": str(gateway.port)})

    hello = run_cli(["agent", "hello"], env)
    assert hello.returncode == 0, hello.stderr
    listed = run_cli(["agent", "/tool list_files {}"], env)
    assert listed.returncode == 0, listed.stderr
    assert "allowed: none" not in listed.stdout, listed.stdout
    assert "notes.txt" in listed.stdout, (listed.stdout, listed.stderr)
    assert "[tool] list_files" in listed.stderr, listed.stderr
