"""The ``discovery`` section and ``gateway.auth.allowTailscale``: file, environment and
``--discovery`` flag, and one-line errors naming the key."""

from __future__ import annotations

import json

import pytest

from wingman.config import TAILSCALED_SOCKET, ConfigError, load


def test_discovery_is_off_by_default(tmp_path):
    cfg = load({"WINGMAN_STATE_DIR": str(tmp_path)})
    assert cfg.discovery.enabled is False and cfg.allow_tailscale is False
    assert cfg.discovery.tailscale.socket == TAILSCALED_SOCKET
    assert cfg.discovery.tailscale.tags == [] and cfg.discovery.tailscale.api_key is None


def test_seed_discovery_section_and_environment(tmp_path):
    (tmp_path / "wingman.config.json").write_text(
        json.dumps(
            {
                "gateway": {"auth": {"allowTailscale": True}},
                "discovery": {
                    "enabled": True,
                    "method": "mdns",
                    "name": "My Gateway",
                    "tailscale": {"tags": ["wingman-gateway"]},
                },
            }
        )
    )
    env = {
        "WINGMAN_STATE_DIR": str(tmp_path),
        "TAILSCALE_API_KEY": "tskey-api-x",
        "WINGMAN_TAILSCALE_SOCKET": str(tmp_path / "ts.sock"),
    }
    cfg = load(env)
    assert cfg.allow_tailscale is True
    assert (cfg.discovery.enabled, cfg.discovery.method, cfg.discovery.name) == (
        True,
        "mdns",
        "My Gateway",
    )
    ts = cfg.discovery.tailscale
    assert (ts.tags, ts.api_key, ts.socket) == (
        ["wingman-gateway"],
        "tskey-api-x",
        str(tmp_path / "ts.sock"),
    )
    assert "discovery" not in cfg.raw  # read here, not handed on to the feature apps
    assert load({**env, "WINGMAN_DISCOVERY": "none"}).discovery.enabled is False


def test_discovery_flag_turns_mdns_on(tmp_path):
    cfg = load({"WINGMAN_STATE_DIR": str(tmp_path), "WINGMAN_DISCOVERY": "mdns"})
    assert cfg.discovery.enabled is True and cfg.discovery.method == "mdns"


@pytest.mark.parametrize(
    ("data", "env", "needle"),
    [
        ({}, {"WINGMAN_DISCOVERY": "bonjour"}, "WINGMAN_DISCOVERY: expected mdns or none"),
        ({"discovery": {"method": "carrier-pigeon"}}, {}, "discovery.method"),
        ({"discovery": {"tailscale": {"port": 0}}}, {}, "discovery.tailscale.port"),
        ({"discovery": {"tailscale": {"tags": "gw"}}}, {}, "discovery.tailscale.tags"),
        ({"discovery": {"mdns": True}}, {}, "discovery.mdns"),
        ({"gateway": {"auth": {"allowTailscale": "maybe"}}}, {}, "allowTailscale"),
    ],
)
def test_bad_discovery_config_names_the_key(tmp_path, data, env, needle):
    path = tmp_path / "wingman.config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load({"WINGMAN_CONFIG": str(path), "WINGMAN_STATE_DIR": str(tmp_path), **env})
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
