"""An async Python client for the gateway (canonical dialect). The ``wingman`` CLI uses it.

    async with GatewayClient("ws://127.0.0.1:18789/", token="T") as gw:
        print(await gw.call("health"))
        final = await gw.agent("hello", agent_id="main", on_event=print)
        print(final["result"]["text"])

- :meth:`GatewayClient.call` sends a request and returns its payload, or raises
  :class:`GatewayCallError` with the protocol's ``code`` and ``message``.
- :meth:`GatewayClient.agent` runs an agent: it streams the run's ``agent`` events to
  ``on_event`` and returns the final result. If the connection drops it reconnects (with
  backoff) and retries with the same ``idempotencyKey``, which never starts a second run.
- :meth:`GatewayClient.events` yields every event frame the connection receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from wingman import __version__, tls
from wingman.bridge_client import BridgeClosed, BridgeSocket

#: ``transport`` values: WebSocket only, the HTTP bridge only, or WebSocket falling back.
TRANSPORTS = ("auto", "websocket", "http")
#: The WebSocket upgrade was answered but refused (a proxy, a 4xx/5xx): try the bridge.
UPGRADE_REFUSED = (
    websockets.exceptions.InvalidStatus,
    websockets.exceptions.InvalidHandshake,
    websockets.exceptions.InvalidMessage,
)

EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


async def open_socket(
    url: str,
    *,
    transport: str = "auto",
    connect_timeout: float = 10.0,
    tls_fingerprint: str | None = None,
) -> tuple[ClientConnection | BridgeSocket, str]:
    """``(socket, "websocket" | "http")``: a WebSocket to ``url``, or a bridge session when
    ``transport`` is ``http``, the URL is http(s), or (``auto``) the upgrade is refused.
    Any dialect can be spoken over either; ``wingman gateway join`` uses it too."""
    context = await tls.client_context(url, tls_fingerprint)
    if transport != "http" and not url.startswith(("http://", "https://")):
        try:
            ws = await websockets.connect(
                url,
                open_timeout=connect_timeout,
                max_size=None,
                ping_interval=20,
                **({"ssl": context} if context is not None else {}),
            )
            return ws, "websocket"
        except UPGRADE_REFUSED:
            if transport == "websocket":
                raise
    sock = await BridgeSocket.open(url, open_timeout=connect_timeout, verify=context or True)
    return sock, "http"


class GatewayCallError(Exception):
    """The gateway answered a request with ``ok: false``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.error = error


class _RunEvents:
    """One ``agent`` call's events, each handed out once and in order. Those read before
    the ack has reached the caller (its run id not known yet: a fast run's first steps
    follow its ack at once) wait, and are handed out when it has."""

    def __init__(self, on_event: EventHandler | None, on_ack) -> None:
        self.on_event, self.on_ack = on_event, on_ack
        self.run_id: str | None = None
        self.seen: set[tuple[str, int]] = set()
        self.early: list[dict[str, Any]] = []

    async def forward(self, frame: dict[str, Any]) -> None:
        if frame.get("event") != "agent":
            return
        if self.run_id is None:
            self.early.append(frame)
            return
        await self._deliver(frame, self.run_id)

    async def accepted(self, ack: dict[str, Any]) -> None:
        if self.on_ack is not None:
            self.on_ack(ack)
        while self.early:  # in order; what arrives meanwhile queues behind them
            await self._deliver(self.early.pop(0), ack["runId"])
        self.run_id = ack["runId"]

    async def _deliver(self, frame: dict[str, Any], run_id: str) -> None:
        payload = frame.get("payload") or {}
        if payload.get("runId") != run_id:
            return
        key = (run_id, payload.get("seq", 0))
        if key in self.seen:  # replayed after a reconnect: never hand one step out twice
            return
        self.seen.add(key)
        if self.on_event is not None:
            result = self.on_event(payload)
            if asyncio.iscoroutine(result):
                await result


class GatewayClient:
    """One connection to a gateway; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        password: str | None = None,
        client_id: str = "wingman-cli",
        mode: str = "cli",
        reconnect_attempts: int = 5,
        max_backoff: float = 8.0,
        connect_timeout: float = 10.0,
        transport: str = "auto",
        tls_fingerprint: str | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(
                f"transport: expected one of {', '.join(TRANSPORTS)}, got {transport!r}"
            )
        self.url = url
        #: ``websocket``, ``http`` (the bridge) or ``auto`` (WebSocket, else the bridge).
        self.transport = transport
        #: The transport the last connect used.
        self.transport_used: str | None = None
        self.tls_fingerprint = tls_fingerprint
        self.auth = {k: v for k, v in (("token", token), ("password", password)) if v}
        self.client = {
            "id": client_id,
            "version": __version__,
            "mode": mode,
            "instanceId": str(uuid.uuid4()),
        }
        self.reconnect_attempts = reconnect_attempts
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.hello: dict[str, Any] | None = None
        self._ws: ClientConnection | BridgeSocket | None = None
        self._reader: asyncio.Task | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._handlers: list[EventHandler] = []
        self._lost = asyncio.Event()

    # connection -------------------------------------------------------------------------------
    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _open(self) -> Any:
        """A WebSocket, or a bridge session when asked or when the upgrade is refused."""
        sock, self.transport_used = await open_socket(
            self.url,
            transport=self.transport,
            connect_timeout=self.connect_timeout,
            tls_fingerprint=self.tls_fingerprint,
        )
        return sock

    async def connect(self) -> dict[str, Any]:
        """Open the socket and handshake; returns ``hello-ok``."""
        ws = await self._open()
        try:
            challenge = json.loads(await asyncio.wait_for(ws.recv(), self.connect_timeout))
            if challenge.get("event") != "connect.challenge":
                raise ConnectionError(f"unexpected first frame: {challenge}")
            params: dict[str, Any] = {"minProtocol": 3, "maxProtocol": 4, "client": self.client}
            if self.auth:
                params["auth"] = self.auth
            await ws.send(
                json.dumps({"type": "req", "id": "connect", "method": "connect", "params": params})
            )
            reply = json.loads(await asyncio.wait_for(ws.recv(), self.connect_timeout))
        except BaseException:
            await ws.close()
            raise
        if not reply.get("ok"):
            await ws.close()
            raise GatewayCallError(
                reply.get("error") or {"code": "UNAVAILABLE", "message": str(reply)}
            )
        self._ws = ws
        self.hello = reply["payload"]
        self._lost.clear()
        self._reader = asyncio.create_task(self._read(ws))
        return self.hello

    async def reconnect(self) -> dict[str, Any]:
        """Reconnect with exponential backoff (bounded attempts)."""
        delay = 0.25
        last: BaseException | None = None
        for _ in range(self.reconnect_attempts):
            try:
                return await self.connect()
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                last = exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise ConnectionError(f"cannot reconnect to {self.url}: {last}")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self, ws: ClientConnection | BridgeSocket) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "res":
                    queue = self._waiters.get(frame.get("id"))
                    if queue is not None:
                        queue.put_nowait(frame)
                elif frame.get("type") == "event":
                    await self._dispatch_event(frame)
        except (websockets.ConnectionClosed, BridgeClosed):
            pass
        finally:
            self._lost.set()
            for queue in self._waiters.values():
                queue.put_nowait({"type": "lost"})

    async def _dispatch_event(self, frame: dict[str, Any]) -> None:
        self._events.put_nowait(frame)
        for handler in list(self._handlers):
            result = handler(frame)
            if asyncio.iscoroutine(result):
                await result

    # requests ---------------------------------------------------------------------------------
    async def _send(self, method: str, params: dict[str, Any] | None) -> tuple[str, asyncio.Queue]:
        if self._ws is None or self._lost.is_set():
            raise ConnectionError("not connected")
        rid = f"{next(self._ids)}:{uuid.uuid4().hex[:8]}"
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiters[rid] = queue
        frame: dict[str, Any] = {"type": "req", "id": rid, "method": method}
        if params is not None:
            frame["params"] = params
        await self._ws.send(json.dumps(frame))
        return rid, queue

    @staticmethod
    async def _next(queue: asyncio.Queue, seconds: float | None) -> dict[str, Any]:
        frame = await asyncio.wait_for(queue.get(), seconds)
        if frame.get("type") == "lost":
            raise ConnectionError("connection lost")
        if not frame.get("ok"):
            raise GatewayCallError(frame.get("error") or {})
        return frame.get("payload")

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, wait_seconds: float = 30
    ) -> Any:
        """One request → its payload (raises GatewayCallError / ConnectionError / TimeoutError)."""
        rid, queue = await self._send(method, params)
        try:
            return await self._next(queue, wait_seconds)
        finally:
            self._waiters.pop(rid, None)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event frame, as it arrives."""
        while True:
            frame = await self._events.get()
            if frame is None:
                return
            yield frame

    async def agent(
        self,
        message: str,
        *,
        agent_id: str | None = None,
        session_key: str | None = None,
        idempotency_key: str | None = None,
        on_event: EventHandler | None = None,
        on_ack: Callable[[dict[str, Any]], None] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Run an agent and stream its events; returns the final result.

        Survives a dropped connection: reconnects and retries with the same idempotency key.
        """
        params: dict[str, Any] = {
            "message": message,
            "idempotencyKey": idempotency_key or str(uuid.uuid4()),
        }
        if agent_id:
            params["agentId"] = agent_id
        if session_key:
            params["sessionKey"] = session_key
        params.update(extra)
        events = _RunEvents(on_event, on_ack)
        self._handlers.append(events.forward)
        try:
            for _attempt in range(self.reconnect_attempts + 1):
                try:
                    return await self._agent_once(params, events.accepted)
                except (ConnectionError, websockets.ConnectionClosed):
                    await self.reconnect()
            raise ConnectionError("gave up after reconnecting")
        finally:
            self._handlers.remove(events.forward)

    async def _agent_once(self, params: dict[str, Any], on_ack) -> dict[str, Any]:
        rid, queue = await self._send("agent", params)
        try:
            ack = await self._next(queue, 30)
            await on_ack(ack)
            return await self._next(queue, None)
        finally:
            self._waiters.pop(rid, None)

    async def cancel(self, run_id: str) -> dict[str, Any]:
        return await self.call("agent.cancel", {"runId": run_id})
