"""Configuration precedence and errors (wingman/config.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wingman.config import ConfigError, load


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "wingman.config.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_defaults(tmp_path):
    cfg = load({"WINGMAN_STATE_DIR": str(tmp_path)})
    assert (cfg.host, cfg.port, cfg.auth_mode) == ("127.0.0.1", 18789, "none")
    assert cfg.state_dir == tmp_path
    assert cfg.policy.rate_limit_per_minute == 100
    assert cfg.fs_roots == [tmp_path / "outputs"]
    assert cfg.asgi_server == "uvicorn"


def test_file_in_state_dir_is_read(tmp_path):
    write(tmp_path, {"gateway": {"port": 19000, "auth": {"mode": "token", "token": "abc"}}})
    cfg = load({"WINGMAN_STATE_DIR": str(tmp_path)})
    assert cfg.port == 19000 and cfg.auth_mode == "token" and cfg.token == "abc"
    assert cfg.config_path == tmp_path / "wingman.config.json"


def test_environment_wins_over_file(tmp_path):
    path = write(tmp_path, {"gateway": {"port": 19000, "host": "127.0.0.2"}})
    cfg = load(
        {"WINGMAN_CONFIG": str(path), "WINGMAN_PORT": "19001", "WINGMAN_STATE_DIR": str(tmp_path)}
    )
    assert cfg.port == 19001 and cfg.host == "127.0.0.2"


def test_write_coalescing_window_from_file_and_environment(tmp_path):
    assert load({"WINGMAN_STATE_DIR": str(tmp_path)}).policy.write_coalesce_us == 500
    path = write(tmp_path, {"gateway": {"policy": {"writeCoalesceUs": 250}}})
    env = {"WINGMAN_CONFIG": str(path), "WINGMAN_STATE_DIR": str(tmp_path)}
    assert load(env).policy.write_coalesce_us == 250
    assert load({**env, "WINGMAN_WRITE_COALESCE_US": "0"}).policy.write_coalesce_us == 0


def test_cli_flags_win_over_environment(tmp_path, monkeypatch):
    from wingman import cli

    monkeypatch.setenv("WINGMAN_PORT", "19001")
    monkeypatch.setenv("WINGMAN_STATE_DIR", str(tmp_path))
    args = cli.build_parser().parse_args(["gateway", "run", "--port", "19002", "--token", "t"])
    cli.apply_flags(args)
    cfg = load()
    assert cfg.port == 19002 and cfg.auth_mode == "token" and cfg.token == "t"


def test_asgi_server_from_file_environment_and_flag(tmp_path, monkeypatch):
    from wingman import cli

    path = write(tmp_path, {"gateway": {"asgiServer": "daphne"}})
    env = {"WINGMAN_CONFIG": str(path), "WINGMAN_STATE_DIR": str(tmp_path)}
    assert load(env).asgi_server == "daphne"
    assert load({**env, "WINGMAN_ASGI_SERVER": "uvicorn"}).asgi_server == "uvicorn"
    monkeypatch.setenv("WINGMAN_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("WINGMAN_ASGI_SERVER", "uvicorn")
    args = cli.build_parser().parse_args(["gateway", "start", "--server", "daphne"])
    cli.apply_flags(args)
    assert load().asgi_server == "daphne"
    assert cli._run_args(args) == ["--server", "daphne"]  # passed on to the daemon's child


def test_token_env_keeps_token_mode_from_file(tmp_path):
    path = write(tmp_path, {"gateway": {"auth": {"mode": "token"}}})
    cfg = load(
        {
            "WINGMAN_CONFIG": str(path),
            "WINGMAN_GATEWAY_TOKEN": "from-env",
            "WINGMAN_STATE_DIR": str(tmp_path),
        }
    )
    assert cfg.token == "from-env"


def test_seed_example_config_is_accepted(tmp_path):
    seed = {
        "gateway": {
            "host": "127.0.0.1",
            "port": 18789,
            "stateDir": str(tmp_path),
            "fsRoots": ["~/Projects", "~/.wingman/outputs"],
            "auth": {"mode": "token", "token": "sk-x", "allowTailscale": True},
            "controlUi": {
                "enabled": True,
                "port": 18790,
                "pairingRequired": True,
                "allowInsecureAuth": False,
            },
        },
        "agents": {"list": [{"id": "main", "default": True}], "bindings": []},
        "discovery": {"enabled": False},
    }
    cfg = load({"WINGMAN_CONFIG": str(write(tmp_path, seed))})
    assert cfg.control_ui.port == 18790 and cfg.raw["agents"]["list"][0]["id"] == "main"


@pytest.mark.parametrize(
    ("data", "env", "needle"),
    [
        ({"gateway": {"port": "abc"}}, {}, "gateway.port"),
        ({"gateway": {"port": 70000}}, {}, "gateway.port"),
        ({"gateway": {"auth": {"mode": "magic"}}}, {}, "gateway.auth.mode"),
        ({"gateway": {"prot": 1}}, {}, "gateway.prot"),
        ({"gateway": {"policy": {"tickIntervalMs": 1}}}, {}, "gateway.policy.tickIntervalMs"),
        ({"gateway": {"auth": {"mode": "token"}}}, {}, "gateway.auth.mode"),
        ({"gateway": {"host": "0.0.0.0"}}, {}, "gateway.auth.mode"),
        ({}, {"WINGMAN_PORT": "x"}, "WINGMAN_PORT"),
        ({}, {"WINGMAN_AUTH_MODE": "weird"}, "WINGMAN_AUTH_MODE"),
        ({}, {"WINGMAN_ASGI_SERVER": "gunicorn"}, "WINGMAN_ASGI_SERVER"),
        ({}, {"WINGMAN_CONTROL_UI_PORT": "x"}, "WINGMAN_CONTROL_UI_PORT"),
        ({}, {"WINGMAN_CONTROL_UI_PORT": "70000"}, "gateway.controlUi.port"),
        ({}, {"WINGMAN_CONTROL_UI": "maybe"}, "WINGMAN_CONTROL_UI"),
        ({}, {"WINGMAN_WRITE_COALESCE_US": "soon"}, "WINGMAN_WRITE_COALESCE_US"),
        ({}, {"WINGMAN_WRITE_COALESCE_US": "-5"}, "gateway.policy.writeCoalesceUs"),
        ({}, {"WINGMAN_MAX_BUFFERED_BYTES": "5"}, "gateway.policy.maxBufferedBytes"),
        ({"gateway": {"policy": {"writeCoalesceUs": 2_000_000}}}, {}, "writeCoalesceUs"),
        ({"gateway": {"controlUi": {"port": -1}}}, {}, "gateway.controlUi.port"),
        ({"gateway": {"asgiServer": "hypercorn"}}, {}, "gateway.asgiServer"),
        ("{not json", {}, "invalid JSON"),
        ("[]", {}, "JSON object"),
    ],
)
def test_bad_config_names_the_key(tmp_path, data, env, needle):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load({"WINGMAN_CONFIG": str(path), "WINGMAN_STATE_DIR": str(tmp_path), **env})
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_control_ui_listener_from_file_and_environment(tmp_path):
    path = write(tmp_path, {"gateway": {"controlUi": {"port": 19000, "enabled": True}}})
    env = {"WINGMAN_CONFIG": str(path), "WINGMAN_STATE_DIR": str(tmp_path)}
    assert load(env).control_ui.port == 19000
    cfg = load({**env, "WINGMAN_CONTROL_UI_PORT": "0", "WINGMAN_CONTROL_UI": "off"})
    assert cfg.control_ui.port == 0 and cfg.control_ui.enabled is False


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load({"WINGMAN_CONFIG": str(tmp_path / "nope.json")})
