"""The client side of the HTTP bridge: a WebSocket look-alike over ``/bridge/send`` and
``/bridge/poll``, for networks whose proxy refuses the WebSocket upgrade.

:class:`BridgeSocket` has the part of websockets' ``ClientConnection`` that
:class:`~wingman.client.GatewayClient` uses (``send``, ``recv``, ``close``, ``async for``):
frames are posted as they are sent, and one long poll at a time fetches what the gateway
queued, acknowledging by cursor what the previous poll returned (a lost response is simply
fetched again, never twice once acked).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

#: Seconds a poll may wait on the gateway (its ``bridge.pollTimeoutMs`` caps it as well).
POLL_SECONDS = 25.0


class BridgeClosed(ConnectionError):
    """The bridge session ended (the gateway closed it, or it expired)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"bridge session closed ({code}) {reason}".strip())
        self.code = code


def http_base(url: str) -> str:
    """``ws://h:p/path`` → ``http://h:p`` (``wss`` → ``https``); http(s) URLs keep their scheme."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


class BridgeSocket:
    """See the module docstring."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.base = base
        self.session: str | None = None
        self.cursor = 0
        self.close_code: int | None = None
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._poller: asyncio.Task | None = None

    @classmethod
    async def open(
        cls, url: str, *, open_timeout: float = 10.0, verify: ssl.SSLContext | bool = True
    ) -> BridgeSocket:
        """Open a session (its ``connect.challenge`` is the first frame ``recv`` returns)."""
        limits = httpx.Timeout(open_timeout, read=POLL_SECONDS + open_timeout)
        http = httpx.AsyncClient(timeout=limits, verify=verify)
        sock = cls(http, http_base(url))
        try:
            await sock._post([])
        except BaseException:
            await http.aclose()
            raise
        sock._poller = asyncio.get_running_loop().create_task(sock._poll_forever())
        return sock

    async def _post(self, frames: Any) -> dict[str, Any]:
        headers = {"x-wingman-session": self.session} if self.session else {}
        try:
            r = await self.http.post(
                f"{self.base}/bridge/send", content=json.dumps(frames), headers=headers
            )
        except httpx.HTTPError as exc:
            raise ConnectionError(f"bridge send failed: {exc}") from exc
        if r.status_code != 200:
            raise BridgeClosed(None, f"HTTP {r.status_code}: {r.text[:200]}")
        answer = r.json()
        self.session = answer["session"]
        return answer

    async def send(self, text: str) -> None:
        """Post one frame (text of a JSON object)."""
        if self.close_code is not None:
            raise BridgeClosed(self.close_code)
        await self._post([json.loads(text)])

    async def _poll_forever(self) -> None:
        try:
            while True:
                r = await self.http.get(
                    f"{self.base}/bridge/poll",
                    params={
                        "session": self.session,
                        "cursor": self.cursor,
                        "timeout": int(POLL_SECONDS * 1000),
                    },
                )
                if r.status_code != 200:
                    self.close_code = self.close_code or 1006
                    return
                answer = r.json()
                for item in answer["frames"]:
                    self._inbox.put_nowait(json.dumps(item["frame"]))
                self.cursor = answer["cursor"]
                if answer["closed"] is not None and not answer["frames"]:
                    self.close_code = answer["closed"]
                    return
        except httpx.HTTPError:
            self.close_code = self.close_code or 1006
        finally:
            self._inbox.put_nowait(None)

    async def recv(self) -> str:
        """The next frame; ``BridgeClosed`` once the session ended."""
        text = await self._inbox.get()
        if text is None:
            self._inbox.put_nowait(None)  # later readers learn it as well
            raise BridgeClosed(self.close_code)
        return text

    def __aiter__(self) -> BridgeSocket:
        return self

    async def __anext__(self) -> str:
        try:
            return await self.recv()
        except BridgeClosed:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """End the session on the gateway (its presence goes at once) and stop polling."""
        if self.close_code is None and self.session is not None:
            self.close_code = 1000
            with contextlib.suppress(httpx.HTTPError):
                await self.http.post(
                    f"{self.base}/bridge/send",
                    content="[]",
                    params={"close": "1"},
                    headers={"x-wingman-session": self.session},
                )
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
        await self.http.aclose()
