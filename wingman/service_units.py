"""systemd units for the gateway, the Celery worker and beat (deploy/systemd/ holds them
rendered with the defaults) and ``wingman gateway install-service``, which writes and
enables them for this installation."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

UNITS = ("wingman-gateway", "wingman-worker", "wingman-beat")


@dataclass(frozen=True)
class Install:
    """Where and as whom the units run."""

    bin_dir: Path
    state_root: Path
    env_file: Path
    user: str | None  # None: a user unit (systemctl --user)

    @property
    def wanted_by(self) -> str:
        return "multi-user.target" if self.user else "default.target"


DEFAULT = Install(
    bin_dir=Path("/opt/wingman/venv/bin"),
    state_root=Path("/var/lib/wingman"),
    env_file=Path("/etc/wingman/wingman.env"),
    user="wingman",
)

_COMMANDS = {
    "wingman-gateway": ("Wingman Gateway", "{bin}/wingman gateway run", "gateway", 15),
    "wingman-worker": (
        "Wingman Celery worker (executes agent runs)",
        "{bin}/celery -A wingman worker -P threads -c 16 --loglevel INFO",
        "worker",
        60,
    ),
    "wingman-beat": (
        "Wingman Celery beat (exactly one per installation)",
        "{bin}/celery -A wingman beat --loglevel INFO",
        "beat",
        15,
    ),
}


def render(name: str, inst: Install) -> str:
    """The unit file ``<name>.service`` for ``inst``."""
    description, command, state, stop_seconds = _COMMANDS[name]
    state_dir = inst.state_root / state
    lines = [
        "[Unit]",
        f"Description={description}",
        "After=network-online.target postgresql.service redis-server.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
    ]
    if inst.user:
        lines += [f"User={inst.user}", f"Group={inst.user}"]
    lines += [
        f"EnvironmentFile=-{inst.env_file}",
        f"Environment=WINGMAN_STATE_DIR={state_dir}",
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={command.format(bin=inst.bin_dir)}",
        "Restart=on-failure",
        "RestartSec=2",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={stop_seconds}",
        "NoNewPrivileges=yes",
    ]
    if inst.user:  # a system unit: the full sandbox (user units cannot set most of it)
        lines += [
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "RestrictSUIDSGID=yes",
            "LockPersonality=yes",
            f"ReadWritePaths={inst.state_root}",
            "UMask=0077",
        ]
    lines += ["", "[Install]", f"WantedBy={inst.wanted_by}", ""]
    return "\n".join(lines)


def for_this_install(user_mode: bool) -> tuple[Install, Path]:
    """(the installation of the running ``wingman``, the unit directory)."""
    import sys

    bin_dir = Path(sys.executable).parent
    if user_mode:
        home = Path.home()
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        inst = Install(bin_dir, home / ".wingman", config / "wingman" / "wingman.env", None)
        return inst, config / "systemd" / "user"
    return Install(bin_dir, DEFAULT.state_root, DEFAULT.env_file, DEFAULT.user), Path(
        "/etc/systemd/system"
    )


def plan(inst: Install, unit_dir: Path, *, enable: bool) -> list[tuple[str, object]]:
    """The steps of an installation: ("write", (path, text)) and ("run", argv)."""
    steps: list[tuple[str, object]] = []
    if inst.user:
        home, shell = str(inst.state_root), "/usr/sbin/nologin"
        try:
            pwd.getpwnam(inst.user)
        except KeyError:
            useradd = ["useradd", "--system", "--home-dir", home, "--shell", shell, inst.user]
            steps.append(("run", useradd))
        owner = ["-o", inst.user, "-g", inst.user]
        steps.append(("run", ["install", "-d", "-m", "0700", *owner, home]))
    for name in UNITS:
        steps.append(("write", (unit_dir / f"{name}.service", render(name, inst))))
    systemctl = ["systemctl"] if inst.user else ["systemctl", "--user"]
    steps.append(("run", [*systemctl, "daemon-reload"]))
    if enable:
        steps.append(("run", [*systemctl, "enable", "--now", *(f"{n}.service" for n in UNITS)]))
    return steps


def describe(step: tuple[str, object]) -> str:
    kind, what = step
    if kind == "write":
        path, _ = what  # type: ignore[misc]
        return f"write {path}"
    return "run   " + shlex.join(what)  # type: ignore[arg-type]


def execute(steps: list[tuple[str, object]]) -> None:
    """Do the steps (raises OSError / CalledProcessError on the first that fails)."""
    for kind, what in steps:
        if kind == "write":
            path, text = what  # type: ignore[misc]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        else:
            subprocess.run(what, check=True)  # type: ignore[call-overload]  # noqa: S603
