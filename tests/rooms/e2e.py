"""Helpers for the rooms end-to-end tests: rooms created in a gateway's database by a
separate process (the services, as the CLI would), raw WebSocket clients of the
wingman-client and wingman-node dialects, and ``wingman gateway join`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.gateway.gateway_process import REPO, TOKEN, GatewayProcess

#: The agents of :func:`trio_gateway` (the first is the default).
AGENTS = ("alpha", "beta", "gamma")


def trio_gateway(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, model: str, titled: bool = False
) -> Iterator[GatewayProcess]:
    """A module's gateway whose agents are :data:`AGENTS` on ``model`` (``titled``: with
    their names, "Alpha" ...)."""
    state = tmp_path_factory.mktemp(name)
    agents: list[dict[str, Any]] = [{"id": a, "model": model} for a in AGENTS]
    if titled:
        for agent in agents:
            agent["name"] = agent["id"].title()
    agents[0]["default"] = True
    (state / "wingman.config.json").write_text(
        json.dumps({"agents": {"list": agents}}), encoding="utf-8"
    )
    gateway = GatewayProcess(state, name=name).start()
    try:
        yield gateway
    finally:
        gateway.stop()


_CREATE = """
import django, json, sys
django.setup()
from rooms.services import room_create
spec = json.loads(sys.argv[1])
print(room_create(**spec).id)
"""


def create_room(gw: GatewayProcess, **spec: Any) -> str:
    """Create a room in ``gw``'s database (a separate process, as the CLI would)."""
    out = subprocess.run(
        [sys.executable, "-c", _CREATE, json.dumps(spec)],
        cwd=REPO,
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


class Raw:
    """A raw JSON WebSocket (non-canonical dialects): every frame read is kept."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: nothing within {timeout}s: {self.frames[-3:]}"
            ) from None
        frame = json.loads(raw)
        self.frames.append(frame)
        return frame

    async def until(self, predicate, timeout: float = 10, limit: int = 5000) -> list[dict]:
        got = []
        for _ in range(limit):
            got.append(await self.recv(timeout))
            if predicate(got[-1]):
                return got
        raise AssertionError(f"{self.name}: no matching frame in {limit}")

    async def silent(self, seconds: float, unwanted) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                return
            frame = json.loads(raw)
            assert not unwanted(frame), f"{self.name}: unexpected {frame}"


@contextlib.asynccontextmanager
async def raw(url: str, name: str = "raw") -> AsyncIterator[Raw]:
    async with connect(url, proxy=None, open_timeout=5, close_timeout=2, max_size=None) as ws:
        client = Raw(ws, name)
        challenge = await client.recv()
        assert challenge.get("event") == "connect.challenge", challenge
        yield client


async def wingman_client(client: Raw) -> None:
    """The real Wingman CLI's connect."""
    await client.send(
        {
            "type": "connect",
            "id": "c-1",
            "client": {"instanceId": f"cli-{client.name}", "clientType": "cli"},
            "auth": {"token": TOKEN},
            "timestamp": int(time.time() * 1000),
        }
    )
    ready = await client.recv()
    assert ready["payload"] == "gateway-ready", ready


async def node_register(client: Raw, name: str) -> str:
    await client.send({"type": "register", "payload": {"name": name, "token": TOKEN}})
    ack = await client.recv()
    assert ack["type"] == "ack", ack
    return ack["nodeId"]


async def node_join(client: Raw, node_id: str, group: str, *, by_id: bool = False) -> str:
    payload = {"groupId": group} if by_id else {"groupName": group, "createIfNotExists": True}
    await client.send({"type": "join_group", "nodeId": node_id, "payload": payload})
    ack = await client.until(lambda f: f["type"] in ("ack", "error"))
    assert ack[-1]["type"] == "ack", ack
    return ack[-1]["groupId"]


class JoinProcess:
    """A ``wingman gateway join`` process: its stdout lines as they come, stdin to type
    (``stdin=subprocess.DEVNULL``: none, as a service has). ``prefix`` runs it through
    another command (``ip netns exec <name>``)."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        prefix: Sequence[str] = (),
        stdin: int = subprocess.PIPE,
    ) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "wingman", "gateway", "join", *args],
            cwd=REPO,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        #: the id it registered under (set by :meth:`registered`)
        self.node_id: str | None = None
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    async def expect(self, needle: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if needle in line:
                    self.lines.remove(line)
                    return line
            try:
                self.lines.append(await asyncio.to_thread(self._queue.get, True, 0.2))
            except queue.Empty:
                continue
        raise AssertionError(f"no line with {needle!r} within {timeout}s: {self.lines[-10:]}")

    async def registered(self, name: str, timeout: float = 20) -> str:
        """Wait for ``registered as <name> (nodeId <id>)``; the node's id."""
        line = await self.expect(f"registered as {name} (nodeId ", timeout)
        self.node_id = line.rsplit(" ", 1)[-1].rstrip(")")
        return self.node_id

    async def joined(self, name: str, group: str) -> str:
        """:meth:`registered` as ``name``, then wait until it joined ``group``; the node's id."""
        node_id = await self.registered(name)
        await self.expect(f"joined group {group} (groupId ")
        return node_id

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def broadcast_reaches(sender: JoinProcess, receiver: JoinProcess, text: str) -> None:
    """``sender`` types ``text``; ``receiver`` (in the same group) prints it as a broadcast
    from the sender. Both have :meth:`JoinProcess.registered`."""
    sender.type(text)
    got = await receiver.expect(f"broadcast from {sender.node_id}")
    assert f'"content": "{text}"' in got, got


async def direct_reaches(sender: JoinProcess, receiver: JoinProcess, text: str) -> None:
    """``sender`` types ``/direct <receiver's id> text``; ``receiver`` prints it."""
    sender.type(f"/direct {receiver.node_id} {text}")
    got = await receiver.expect(f"direct from {sender.node_id}")
    assert text in got, got
