"""What a method handler may know about its call and do with the connection that made it.

Handlers never see the :class:`~gateway.ws.connection.Connection` or the hub: they get this
narrow context (OpenClaw's handlers get an injected context the same way). The connection
implements :class:`Caller`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from gateway.protocol.dialects.base import ClientIdentity


class Caller(Protocol):
    """The connection side of a call (implemented by ``gateway/ws/connection.py``)."""

    conn_id: str
    identity: ClientIdentity | None
    subscriptions: set[str]

    @property
    def dialect_name(self) -> str | None: ...

    async def join_topic(self, topic: str) -> None: ...

    async def leave_topic(self, topic: str) -> None: ...

    def bind_request(self, key: str, request_id: Any) -> None: ...

    def request_for(self, key: str) -> Any: ...

    def requests(self) -> dict[str, Any]: ...

    async def send_followup(self, request_id: Any, payload: Any) -> None: ...


class CallContext:
    """One call: its request id, the caller's narrow interface, and what to do after the
    reply (e.g. ``agent`` waits for its run and sends a second reply)."""

    __slots__ = ("_caller", "after_reply_actions", "request_id")

    def __init__(self, caller: Caller, request_id: Any) -> None:
        self._caller = caller
        self.request_id = request_id
        self.after_reply_actions: list[Callable[[], Awaitable[Any]]] = []

    @property
    def conn_id(self) -> str:
        return self._caller.conn_id

    @property
    def client(self) -> ClientIdentity | None:
        """Who called (from the handshake)."""
        return self._caller.identity

    @property
    def dialect_name(self) -> str | None:
        return self._caller.dialect_name

    async def join_topic(self, topic: str) -> None:
        """Deliver ``topic``'s events to the caller (e.g. a session's run events)."""
        await self._caller.join_topic(topic)

    async def leave_topic(self, topic: str) -> None:
        await self._caller.leave_topic(topic)

    def bind(self, key: str) -> None:
        """Events about ``key`` (e.g. a run id) answer this request, for dialects that echo
        request ids in events (wingman-client)."""
        self._caller.bind_request(key, self.request_id)

    def key_of_request(self, request_id: Any) -> str | None:
        """The key bound to an earlier request of this caller (by its wire id)."""
        for key, request in self._caller.requests().items():
            if getattr(request, "id", request) == request_id:
                return key
        return None

    @property
    def subscriptions(self) -> frozenset[str]:
        return frozenset(self._caller.subscriptions)

    def subscribe(self, events: Iterable[str]) -> None:
        self._caller.subscriptions.update(events)

    def unsubscribe(self, events: Iterable[str]) -> None:
        self._caller.subscriptions.difference_update(events)

    def after_reply(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run ``action()`` in the background once the reply has been sent."""
        self.after_reply_actions.append(action)

    async def send_followup(self, payload: Any) -> None:
        """Send a second reply to this request (e.g. ``agent``'s final result)."""
        await self._caller.send_followup(self.request_id, payload)
