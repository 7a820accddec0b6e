"""Configuration errors a user meets first, through real ``wingman`` / ``manage.py``
subprocesses: each is one line ``wingman: config error: ...`` naming the problem, exit 2,
no traceback. Lowercase log levels simply work."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.gateway.gateway_process import GatewayProcess, gateway_env, run_cli

CONFIG_ERROR_EXIT = 2
COMMANDS = [["gateway", "status"], ["agents", "list"], ["gateway", "run", "--port", "0"]]
#: ``wingman`` with the PostgreSQL driver hidden, as on an install without psycopg.
NO_PSYCOPG = [
    sys.executable,
    "-c",
    "import sys; sys.modules['psycopg'] = sys.modules['psycopg2'] = None; "
    "from wingman.cli import main; main()",
]


def assert_config_error(result, *words: str) -> str:
    """One ``wingman: config error:`` line on stderr containing ``words``; exit 2."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert lines[0].startswith("wingman: config error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert result.returncode == CONFIG_ERROR_EXIT, (result.returncode, output)
    return lines[0]


@pytest.mark.parametrize("level", ["debug", "Warning", "info"])
def test_log_level_in_any_case_works(tmp_path: Path, level: str) -> None:
    result = run_cli(["gateway", "status"], gateway_env(tmp_path, {"WINGMAN_LOG_LEVEL": level}))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not running" in result.stdout, result.stdout
    assert result.stderr == "", result.stderr


@pytest.mark.e2e
def test_lowercase_debug_level_is_applied_by_the_gateway(tmp_path: Path) -> None:
    with GatewayProcess(tmp_path, env={"WINGMAN_LOG_LEVEL": "debug"}) as gw:
        assert " DEBUG " in gw.log(), gw.log_tail()


def test_unknown_log_level_is_one_line(tmp_path: Path) -> None:
    result = run_cli(["agents", "list"], gateway_env(tmp_path, {"WINGMAN_LOG_LEVEL": "loud"}))
    assert_config_error(result, "WINGMAN_LOG_LEVEL", "'loud'")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_state_dir_that_is_a_file(tmp_path: Path, command: list[str]) -> None:
    state = tmp_path / "state"
    state.write_text("not a directory", encoding="utf-8")
    result = run_cli(command, gateway_env(tmp_path, {"WINGMAN_STATE_DIR": str(state)}))
    assert_config_error(result, str(state), "not a directory")


def _unwritable_dir(tmp_path: Path) -> Path:
    """A state dir this user cannot write: read-only mode, or (root ignores modes) a path
    in sysfs, where nobody may create directories."""
    if os.geteuid() != 0:
        ro = tmp_path / "read-only"
        ro.mkdir(mode=0o555)
        return ro
    if not Path("/sys/fs").is_dir():
        pytest.skip("running as root without /sys: no directory root cannot write")
    return Path(f"/sys/fs/wingman-test-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("command", COMMANDS[:2], ids=" ".join)
def test_unwritable_state_dir(tmp_path: Path, command: list[str]) -> None:
    state = _unwritable_dir(tmp_path)
    try:
        result = run_cli(command, gateway_env(tmp_path, {"WINGMAN_STATE_DIR": str(state)}))
    finally:
        if os.geteuid() != 0:
            state.chmod(0o755)
    assert_config_error(result, str(state))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unknown_database_scheme(tmp_path: Path, command: list[str]) -> None:
    env = gateway_env(tmp_path, {"DATABASE_URL": "bogus://x"})
    line = assert_config_error(run_cli(command, env), "DATABASE_URL", "bogus://")
    assert "postgres://" in line, "the error shows what a valid URL looks like"


def test_database_url_that_is_not_a_url(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, {"DATABASE_URL": "wingman.sqlite3"})
    assert_config_error(run_cli(["agents", "list"], env), "DATABASE_URL", "not a database URL")


def test_database_password_is_not_echoed(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, {"DATABASE_URL": "postgres://u:hunter2@127.0.0.1:abc/db"})
    line = assert_config_error(run_cli(["agents", "list"], env), "DATABASE_URL", "Port")
    assert "hunter2" not in line, line


def test_database_driver_not_installed(tmp_path: Path) -> None:
    """mysql:// maps to Django's MySQL backend, whose driver (mysqlclient) is not installed."""
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed here: mysql:// has its driver")
    env = gateway_env(tmp_path, {"DATABASE_URL": "mysql://u@127.0.0.1/wingman"})
    assert_config_error(run_cli(["agents", "list"], env), "DATABASE_URL", "mysql", "not installed")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_postgresql_url_without_psycopg(tmp_path: Path, command: list[str]) -> None:
    env = gateway_env(tmp_path, {"DATABASE_URL": "postgres://wingman@127.0.0.1:5432/wingman"})
    line = assert_config_error(run_cli(command, env, cmd=NO_PSYCOPG), "DATABASE_URL", "psycopg")
    assert "requirements/production.txt" in line, line


def test_manage_py_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, {"DATABASE_URL": "bogus://x"})
    result = run_cli(["gateway", "status"], env, cmd=[sys.executable, "manage.py"])
    assert_config_error(result, "DATABASE_URL")
