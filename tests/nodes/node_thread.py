"""A signed test node (``TestDevice``, signing like the OpenClaw node host) on its own event
loop in a thread, so a synchronous test (Playwright's sync API) can drive a browser while the
node stays connected, reports host stats and answers ``node.invoke.request``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tests.gateway.gateway_process import WsClient, ws_client
from tests.nodes.signer import TestDevice, invoke_result

#: ``node.host.stats`` as the node host reports it after hello-ok.
HOST_STATS = {
    "cpuCount": 2,
    "loadAverage": [0.5, 0.25, 0.125],
    "memoryTotalBytes": 4 * 1024**3,
    "memoryFreeBytes": 1024**3,
    "diskTotalBytes": 100 * 1024**3,
    "diskAvailableBytes": 40 * 1024**3,
}
WAIT = 10.0

#: ``answer(command, params)`` → the ``node.invoke.result`` fields (``ok``, ``payloadJSON``
#: or ``error``).
Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


def run_async(make: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30) -> Any:
    """Run a coroutine to its end on a fresh loop in a thread (the test's own thread belongs
    to Playwright) and return its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the coroutine did not finish"
    if "error" in box:
        raise box["error"]
    return box["value"]


async def first_response(client: WsClient) -> dict[str, Any]:
    """The connect response (events before it are skipped)."""
    res = await client.recv()
    while res.get("type") != "res":
        res = await client.recv()
    return res


async def connect_once(url: str, dev: TestDevice, **kw: Any) -> dict[str, Any]:
    """Connect ``dev`` once (``kw`` as for ``TestDevice.connect``) and return the connect
    response; the socket is closed after."""
    async with ws_client(url, name="device") as client:
        await client.send(dev.connect(client.challenge, **kw))
        return await first_response(client)


class NodeThread:
    """See the module docstring. ``hello`` is the connect response once connected."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        commands: list[str],
        answer: Answer,
        device: TestDevice | None = None,
    ) -> None:
        self.url, self.name, self.commands, self.answer = url, name, commands, answer
        self.device = device or TestDevice()
        self.hello: dict[str, Any] | None = None
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> NodeThread:
        self._thread.start()
        assert self._ready.wait(WAIT), f"node {self.name!r} did not connect"
        if self._error is not None:
            raise self._error
        assert self.hello is not None and self.hello["ok"], self.hello
        return self

    def stop(self) -> None:
        """Cancel the node's task until its thread ends: on Python 3.11 ``asyncio.wait_for``
        (its ``recv``) swallows a cancellation that lands as a frame arrives, so one cancel
        can be lost (a loaded machine, CI)."""
        deadline = time.monotonic() + WAIT
        while self._thread.is_alive() and time.monotonic() < deadline:
            if self._task is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(0.5)
        assert not self._thread.is_alive(), f"node {self.name!r} did not stop"

    @property
    def node_id(self) -> str:
        return self.device.device_id

    def _main(self) -> None:
        self._task = self._loop.create_task(self._run())
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _run(self) -> None:
        async with ws_client(self.url, name=self.name) as node:
            frame = self.device.connect(
                node.challenge, commands=self.commands, display_name=self.name
            )
            await node.send(frame)
            self.hello = await first_response(node)
            stats = {"event": "node.host.stats", "payloadJSON": json.dumps(HOST_STATS)}
            await node.send({"type": "req", "id": "stats", "method": "node.event", "params": stats})
            self._ready.set()
            while True:
                frame = await node.recv(timeout=120)
                if frame.get("event") == "node.invoke.request":
                    await self._reply(node, frame["payload"])

    async def _reply(self, node: WsClient, req: dict[str, Any]) -> None:
        params = json.loads(req.get("paramsJSON") or "{}")
        self.invokes.append((req["command"], params))
        await node.send(invoke_result(req, self.answer(req["command"], params)))
