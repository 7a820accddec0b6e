"""A protocol-aware wrapper around Channels' WebsocketCommunicator on the real ASGI app.

Every frame received is validated against the protocol models, so a test cannot pass on
a frame a real client would reject.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from channels.testing import WebsocketCommunicator

from gateway.protocol.frames import EventFrame, ResponseFrame
from gateway.protocol.handshake import HelloOk
from wingman.asgi import application

TIMEOUT = 3


def validate(frame: dict[str, Any]) -> dict[str, Any]:
    """Check a canonical frame against the models (and hello-ok payloads in full)."""
    kind = frame.get("type")
    if kind == "res":
        res = ResponseFrame.model_validate(frame)
        assert res.ok == (res.error is None), frame
        if res.ok and isinstance(res.payload, dict) and res.payload.get("type") == "hello-ok":
            HelloOk.model_validate(res.payload)
    elif kind == "event":
        EventFrame.model_validate(frame)
    elif kind == "hello-ok":
        HelloOk.model_validate(frame)
    return frame


def connect_frame(rid: str = "c1", **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {
            "id": "test",
            "version": "1.0",
            "platform": "linux",
            "mode": "cli",
            "instanceId": str(uuid.uuid4()),
        },
    }
    params.update(overrides)
    return {"type": "req", "id": rid, "method": "connect", "params": params}


class Client:
    """One test WebSocket."""

    def __init__(
        self,
        path: str = "/ws",
        client: tuple[str, int] = ("127.0.0.1", 50000),
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.comm = WebsocketCommunicator(application, path, headers=headers)
        self.comm.scope["client"] = list(client)
        self.challenge: dict[str, Any] | None = None

    async def open(self) -> dict[str, Any]:
        connected, _ = await self.comm.connect(timeout=TIMEOUT)
        assert connected
        self.challenge = await self.recv()
        assert self.challenge["event"] == "connect.challenge"
        return self.challenge

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.comm.send_to(bytes_data=frame)
        elif frame == "":  # send_to() refuses an empty frame; real clients can send one
            await self.comm.send_input({"type": "websocket.receive", "text": ""})
        elif isinstance(frame, str):
            await self.comm.send_to(text_data=frame)
        else:
            await self.comm.send_to(text_data=json.dumps(frame))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        message = await self.comm.receive_output(timeout)
        assert message["type"] == "websocket.send", f"expected a frame, got {message}"
        return validate(json.loads(message["text"]))

    async def recv_until(self, predicate, timeout: float = TIMEOUT, limit: int = 200):
        """Frames until one matches (bounded); returns (match, skipped)."""
        skipped = []
        for _ in range(limit):
            frame = await self.recv(timeout)
            if predicate(frame):
                return frame, skipped
            skipped.append(frame)
        raise AssertionError(f"no matching frame in {limit}: {skipped[-3:]}")

    async def recv_res(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next response, skipping events (presence, tick) that may come first."""
        frame, _ = await self.recv_until(lambda f: f.get("type") == "res", timeout)
        return frame

    async def call(self, method: str, params: dict | None = None, rid: str | None = None):
        rid = rid or f"r-{uuid.uuid4().hex[:8]}"
        frame: dict[str, Any] = {"type": "req", "id": rid, "method": method}
        if params is not None:
            frame["params"] = params
        await self.send(frame)
        res, _ = await self.recv_until(lambda f: f.get("type") == "res" and f.get("id") == rid)
        return res

    async def handshake(self, **overrides: Any) -> dict[str, Any]:
        await self.open()
        frame = connect_frame(**overrides)
        await self.send(frame)
        res = await self.recv()
        assert res["type"] == "res" and res["id"] == frame["id"], res
        return res

    async def expect_close(self, timeout: float = TIMEOUT) -> int:
        """Skip frames until the server closes; return the close code."""
        for _ in range(50):
            message = await self.comm.receive_output(timeout)
            if message["type"] == "websocket.close":
                return message.get("code", 1000)
        raise AssertionError("server did not close")

    async def nothing(self, timeout: float = 0.2) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        await self.comm.disconnect()
