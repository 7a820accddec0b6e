"""The deployment files say what the README says: the Dockerfile, deploy/compose.yaml (parsed,
and validated by Debian's docker-compose where installed; no Docker daemon is needed), the
systemd units (``systemd-analyze verify``) and ``wingman gateway install-service``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gateway.gateway_process import REPO, gateway_env
from wingman import service_units

DEPLOY = REPO / "deploy"


def missing(tool: str) -> None:
    """Skip locally, fail under CI, when a tool tests/run.sh installs is absent."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} is not installed (tests/run.sh installs it)")
    pytest.skip(f"{tool} is not installed")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_topology() -> None:
    services = compose()["services"]
    assert set(services) == {
        "postgres", "redis", "migrate", "gateway1", "gateway2", "worker", "beat", "proxy"
    }  # fmt: skip
    commands = {name: " ".join(s.get("command", [])) for name, s in services.items()}
    assert commands["migrate"] == "wingman gateway migrate"
    assert commands["gateway1"] == commands["gateway2"] == "wingman gateway run"
    assert commands["worker"].startswith("celery -A wingman worker -P threads -c 16")
    beats = [n for n, c in commands.items() if " beat" in c]
    assert beats == ["beat"] and services["beat"]["deploy"]["replicas"] == 1
    for gw in ("gateway1", "gateway2"):
        s = services[gw]
        assert s["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "/health" in " ".join(s["healthcheck"]["test"])
        assert s["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert s["environment"]["DATABASE_URL"].startswith("postgres://wingman:${POSTGRES_")
    assert services["gateway1"]["volumes"] != services["gateway2"]["volumes"]  # own state dirs
    for name, s in services.items():
        assert s["restart"] == ("no" if name == "migrate" else "unless-stopped"), name
        if name != "migrate":
            assert "healthcheck" in s or name == "beat", name
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert services["proxy"]["depends_on"]["gateway1"] == {"condition": "service_healthy"}
    # secrets only from the env file: no literal token or password in the compose file
    app = services["gateway1"]
    assert app["env_file"] == ".env"
    assert "WINGMAN_GATEWAY_TOKEN" not in app["environment"]
    example = (DEPLOY / ".env.example").read_text()
    for key in ("POSTGRES_PASSWORD=", "WINGMAN_GATEWAY_TOKEN=", "DJANGO_SECRET_KEY="):
        assert key in example


def test_compose_config_validates(tmp_path: Path) -> None:
    tool = shutil.which("docker-compose") or shutil.which("docker")
    if tool is None:
        missing("docker-compose")
    project = tmp_path / "project"
    shutil.copytree(DEPLOY, project / "deploy")
    shutil.copy(REPO / "Dockerfile", project / "Dockerfile")
    (project / "deploy" / ".env").write_text((DEPLOY / ".env.example").read_text())
    argv = [tool, "-f", "compose.yaml", "config"]
    if tool.endswith("/docker"):
        argv = [tool, "compose", "-f", "compose.yaml", "config"]
    done = subprocess.run(
        argv, cwd=project / "deploy", capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    env = resolved["services"]["gateway2"]["environment"]
    assert env["DATABASE_URL"] == "postgres://wingman:change-me@postgres:5432/wingman"
    assert env["WINGMAN_GATEWAY_TOKEN"] == "change-me" and env["WINGMAN_GATEWAY_NAME"] == "gateway2"
    # the gateways believe X-Forwarded-For from the compose network only, where the proxy is
    subnet = resolved["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert env["WINGMAN_WEBHOOK_TRUSTED_PROXIES"] == subnet == "172.28.18.0/24"
    # a missing password is an error, not an empty password
    (project / "deploy" / ".env").write_text("WINGMAN_GATEWAY_TOKEN=x\n")
    done = subprocess.run(
        argv, cwd=project / "deploy", capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr, done


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms == ["FROM python:3.11-slim AS build", "FROM python:3.11-slim AS runtime"]
    assert "RUN pip install -r requirements/production.txt" in lines
    assert "collectstatic --noinput" in text
    assert "USER wingman:wingman" in lines and "useradd --system --uid 10001" in text
    health = next(line for line in lines if line.startswith("HEALTHCHECK"))
    assert "/health" in text[text.index(health) :].splitlines()[1]
    assert lines[-1] == 'CMD ["wingman", "gateway", "run"]'
    assert "WINGMAN_HOST=0.0.0.0" in text and "WINGMAN_AUTH_MODE=token" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "*.sqlite3", "tests"):
        assert entry in ignored


def test_image_environment_requires_a_token(tmp_path: Path) -> None:
    """The image's settings (all interfaces, token auth) refuse to start without a token."""
    env = gateway_env(tmp_path, {"WINGMAN_GATEWAY_TOKEN": None})
    env.update({"WINGMAN_HOST": "0.0.0.0", "WINGMAN_AUTH_MODE": "token", "WINGMAN_PORT": "0"})
    done = subprocess.run(
        [sys.executable, "-m", "wingman", "gateway", "run"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert "'token' needs a token" in done.stderr and "listening" not in done.stdout


def test_systemd_units_are_the_rendered_ones_and_verify(tmp_path: Path) -> None:
    for name in service_units.UNITS:
        path = DEPLOY / "systemd" / f"{name}.service"
        assert path.read_text() == service_units.render(name, service_units.DEFAULT), name
        text = path.read_text()
        for option in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
                       "PrivateTmp=yes", "User=wingman", "ReadWritePaths=/var/lib/wingman",
                       "EnvironmentFile=-/etc/wingman/wingman.env"):  # fmt: skip
            assert option in text, (name, option)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze")
    # verify with this venv's executables (verify checks ExecStart exists)
    inst = service_units.Install(
        Path(sys.executable).parent, tmp_path / "state", tmp_path / "wingman.env", "root"
    )
    paths = []
    for name in service_units.UNITS:
        paths.append(tmp_path / f"{name}.service")
        paths[-1].write_text(service_units.render(name, inst))
    done = subprocess.run(
        [analyze, "verify", *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in done.stderr.splitlines() if "wingman-" in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_install_service_dry_run_and_write(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "state")
    base = [sys.executable, "-m", "wingman", "gateway", "install-service"]
    dry = subprocess.run(
        [*base, "--dry-run", "--unit-dir", str(tmp_path / "units")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert dry.returncode == 0, dry
    assert f"would write {tmp_path}/units/wingman-gateway.service" in dry.stdout
    assert "would run   systemctl enable --now wingman-gateway.service" in dry.stdout
    assert not (tmp_path / "units").exists()
    # systemctl itself is recorded, not run (no user session bus here)
    (tmp_path / "bin").mkdir()
    calls = tmp_path / "systemctl.calls"
    fake = tmp_path / "bin" / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    done = subprocess.run(
        [*base, "--user", "--no-enable", "--unit-dir", str(tmp_path / "units")],
        env={**env, "PATH": f"{tmp_path / 'bin'}:{env['PATH']}"},
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done
    assert calls.read_text().splitlines() == ["--user daemon-reload"]
    written = sorted(p.name for p in (tmp_path / "units").iterdir())
    assert written == [f"{n}.service" for n in sorted(service_units.UNITS)]
    gateway_unit = (tmp_path / "units" / "wingman-gateway.service").read_text()
    assert f"ExecStart={Path(sys.executable).parent}/wingman gateway run" in gateway_unit
    assert "User=" not in gateway_unit and "WantedBy=default.target" in gateway_unit
