"""mDNS for real, inside a network namespace this test creates (so no multicast packet leaves
the machine): a gateway started with ``--discovery mdns`` announces
``_wingman-gateway._tcp.local.``, ``wingman gateway discover`` in another process finds it
with its TXT records, and a third process watching the service type sees it withdrawn
(goodbye packets) when the gateway shuts down."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gateway.gateway_process import REPO, run_cli, wingman_command
from tests.gateway.netns import NetnsGateway, netns_exec

pytestmark = pytest.mark.e2e

#: Prints one line per browse event: "Added <name> <txt keys>" / "Removed <name>".
WATCHER = """
import sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
zc = Zeroconf(ip_version=IPVersion.V4Only)
def on_change(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Removed:
        print("Removed", name, flush=True)
    elif state_change is ServiceStateChange.Added:
        info = zeroconf.get_service_info(service_type, name, 3000)
        strings = sorted(k.decode() for k in (info.properties if info else {}))
        print("Added", name, ",".join(strings), len(info.text) if info else 0, flush=True)
ServiceBrowser(zc, "_wingman-gateway._tcp.local.", handlers=[on_change])
print("watching", flush=True)
time.sleep(60)
"""


class Watcher:
    """The zeroconf watcher script in the namespace; its lines arrive on a queue."""

    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(
            netns_exec(netns, [sys.executable, "-c", WATCHER]),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line within {timeout}s: {seen}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def test_announce_discover_and_withdraw_inside_a_network_namespace(netns, tmp_path):
    name = f"netns-gw-{uuid.uuid4().hex[:6]}"
    watcher = Watcher(netns)
    gw = NetnsGateway(
        tmp_path / "gw",
        env={"WINGMAN_GATEWAY_NAME": name},
        args=["--discovery", "mdns"],
        netns=netns,
    )
    try:
        watcher.expect("watching", 15)
        gw.start()
        added = watcher.expect(f"Added {name}._wingman-gateway._tcp.local.", 10)
        # one TXT string per key, exactly these keys
        assert added.split()[2] == "auth,capabilities,path,transport,version", added

        # both forms at the same time: each listens for its whole timeout
        with ThreadPoolExecutor(2) as pool:
            result, text = pool.map(
                lambda args: run_cli(args, gw.env, cmd=netns_exec(netns, wingman_command())),
                [
                    ["gateway", "discover", "--timeout", "3000", "--json"],
                    ["gateway", "discover", "--timeout", "2000"],
                ],
            )
        assert result.returncode == 0, (result.stdout, result.stderr)
        found = json.loads(result.stdout)
        ours = [g for g in found if g["name"] == name]
        assert len(ours) == 1, found
        g = ours[0]
        assert g["url"] == f"ws://127.0.0.1:{gw.port}/ws"
        assert g["auth"] == "token" and g["authRequired"] is True
        assert g["transport"] == "ws" and g["version"]
        assert "agent" in g["capabilities"] and "health" in g["capabilities"]

        assert text.returncode == 0, text.stderr
        assert f"{name}  ws://127.0.0.1:{gw.port}/ws  auth required (token)" in text.stdout

        assert gw.stop() == 0, gw.log()
        watcher.expect(f"Removed {name}._wingman-gateway._tcp.local.", 5)
    finally:
        gw.stop()
        watcher.stop()


def test_discover_finds_nothing_in_an_empty_namespace_within_the_timeout(netns, tmp_path):
    started = time.monotonic()
    result = run_cli(
        ["gateway", "discover", "--timeout", "1000"],
        {"WINGMAN_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cmd=netns_exec(netns, wingman_command()),
    )
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "No gateway found over mDNS within 1000 ms." in result.stdout
    assert time.monotonic() - started < 15


def test_gateway_without_discovery_announces_nothing(netns, tmp_path):
    watcher = Watcher(netns)
    gw = NetnsGateway(tmp_path / "gw", netns=netns)
    try:
        watcher.expect("watching", 15)
        gw.start()
        time.sleep(1.5)  # an announcement would arrive well within this
        lines = []
        while not watcher.lines.empty():
            lines.append(watcher.lines.get())
        assert not [ln for ln in lines if ln.startswith("Added")], lines
    finally:
        gw.stop()
        watcher.stop()


def test_a_gateway_without_discovery_never_imports_zeroconf() -> None:
    """python-zeroconf costs a process ~14 MB: only a gateway that announces loads it."""
    import subprocess
    import sys

    code = (
        "import sys; from gateway.discovery import announce; "
        "assert 'zeroconf' not in sys.modules, 'zeroconf imported'; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
