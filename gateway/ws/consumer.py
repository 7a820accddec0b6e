"""The WebSocket consumer: a thin pipe between the ASGI server and :class:`Connection`.

No business logic, no ORM: it accepts the socket, hands frames to the connection and
implements the transport the connection writes to. Frames are decoded by the connection
(not ``AsyncJsonWebsocketConsumer``), so a bad frame never becomes a traceback.
"""

from __future__ import annotations

import asyncio
import logging

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from gateway.delivery.hub import get_hub
from gateway.security.webauth import BrowserCredentials
from gateway.ws.connection import Connection
from gateway.ws.writer import FRAMES_SCOPE_KEY, FrameWriter, TwistedSocket

logger = logging.getLogger(__name__)


class GatewayConsumer(AsyncWebsocketConsumer):
    """One per socket."""

    # No per-socket channel: events reach sockets through the process hub (hub.py).
    channel_layer_alias = "__no_per_socket_channel__"

    #: We sent the close, or the server refused a send because the socket is going away:
    #: later frames are dropped instead of raising at the caller.
    closing = False

    connection: Connection | None = None
    #: The server's frame writer for this socket (uvicorn; a TwistedSocket on daphne), or
    #: None (tests on the bare ASGI app).
    frames: FrameWriter | TwistedSocket | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Channels' loop minus a task and an ``asyncio.wait`` per frame (``await_many_dispatch``
        waits on several sources; this consumer has one, the socket): each message is
        received and dispatched in turn, as there."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch minus ``aclose_old_connections()`` per frame (a thread hop):
        this consumer never touches the database; services that do manage their own."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        """Accept, then let the connection send ``connect.challenge``."""
        await self.accept()
        self.frames = self.scope.get(FRAMES_SCOPE_KEY)
        client = self.scope.get("client") or (None, None)
        self.connection = Connection(
            self,
            await get_hub(),
            client_ip=client[0],
            browser=BrowserCredentials.from_scope(self.scope),
        )
        await self.connection.opened()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One frame in."""
        if self.connection is not None:
            await self.connection.received(text_data, bytes_data)

    async def websocket_disconnect(self, message: dict) -> None:
        """Channels' handler minus its per-socket group cleanup (this consumer joins no
        groups) and ``aclose_old_connections()`` (a thread hop per disconnect)."""
        await self.disconnect(message.get("code", 1005))
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        """The socket closed (either side)."""
        if self.connection is not None:
            await self.connection.closed_by_peer()

    # Transport (used by Connection and the hub) -------------------------------------------
    def send_text_nowait(self, text: str, *, now: bool = False) -> bool:
        """:meth:`send_text` without a coroutine when the frame writer takes the frame (or the
        socket is closing: dropped); False: nothing done, call :meth:`send_text`."""
        if self.closing:
            return True
        return self.frames is not None and self.frames.send_text(text, now=now)

    async def send_text(self, text: str, *, now: bool = False) -> None:
        if self.send_text_nowait(text, now=now):
            return
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except (OSError, RuntimeError) as exc:
            # The peer went away before the server told us (uvicorn: ClientDisconnected,
            # an OSError; daphne/autobahn: Disconnected, a RuntimeError). The disconnect
            # message follows; the frame could not be delivered anyway.
            logger.debug("send on a closing socket dropped: %r", exc)
            self.closing = True

    async def close(self, code=None, reason=None) -> None:
        """Send what is queued, then the close frame (AsyncWebsocketConsumer's close)."""
        if self.closing:
            return
        self.closing = True
        if self.frames is not None:
            self.frames.flush()
        await super().close(code, reason)

    def buffered_bytes(self) -> int:
        return self.frames.buffered_bytes() if self.frames is not None else 0

    def abort_later(self, seconds: float) -> None:
        if self.frames is not None:
            asyncio.get_running_loop().call_later(seconds, self.frames.abort)
