"""One WebSocket's protocol state machine, independent of dialect and of the ASGI server.

The consumer feeds it opened/frame/closed; it detects the dialect from the first frame,
runs the handshake, enforces the policy (payload size, rate limit, handshake timeout),
dispatches calls to the method registry and renders events. Replies are encoded by the
connection's dialect; nothing here knows which dialect that is.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from django.conf import settings
from pydantic import ValidationError

from gateway.delivery import extensions
from gateway.delivery.encoded import EncodedEvent
from gateway.delivery.hub import Hub
from gateway.protocol import events as ev
from gateway.protocol.dialects import detect
from gateway.protocol.dialects.base import (
    Call,
    ClientIdentity,
    Dialect,
    FrameError,
    Hello,
    dumps,
    invalid,
    now_ms,
)
from gateway.protocol.errors import CloseCode, ErrorCode, GatewayError
from gateway.rpc.context import CallContext
from gateway.rpc.hello import Greeting, hello_ok_frame
from gateway.rpc.registry import Method, registry
from gateway.security import auth, scopes
from gateway.security.webauth import BrowserCredentials
from gateway.state import logcontext, outage
from gateway.ws import admission, inbound
from gateway.ws.writer import SLOW_CONSUMER_ABORT_SECONDS, Transport

logger = logging.getLogger(__name__)

#: jsonrpc clients may retry ``auth`` this many times before the socket is closed.
MAX_AUTH_ATTEMPTS = 5


class Connection:
    """See the module docstring. One instance per socket."""

    def __init__(
        self, transport: Transport, hub: Hub, *, client_ip: str | None, browser=None
    ) -> None:
        self.transport = transport
        self._bridge = transport if hasattr(type(transport), "writes_last") else None
        self.may_write_last = self._bridge is not None  # a bridge session (see writes_last)
        self._send_nowait = getattr(transport, "send_text_nowait", None)  # (the consumer's)
        self.hub = hub
        self.client_ip = client_ip
        #: Cookie and Origin of the upgrade request (browser login, see webauth.py).
        self.browser: BrowserCredentials | None = browser
        self.conn_id = hub.new_conn_id()
        # this socket's task (and what it starts) logs with its connId (wingman/logs.py)
        logcontext.conn_id.set(self.conn_id)
        self.dialect: Dialect | None = None
        self.identity: ClientIdentity | None = None
        self.subscriptions: set[str] = set()
        self.topics: set[str] = set()
        #: event key (e.g. a run id) → the request it answers (dialects that echo request ids).
        self.bound_requests: dict[str, Any] = {}
        self.seq = 0
        self.connected_at = now_ms()
        self.closed = False
        #: The handshake's reply (hello-ok) was sent.
        self.greeted = False
        #: Unregistered from the hub (done once, on the first close path).
        self._forgotten = False
        self._auth_failures = 0
        #: Events that arrived between joining presence and sending hello-ok.
        self._early: list[EncodedEvent] | None = []
        self._handshake_timer: asyncio.TimerHandle | None = None
        #: This connection's ``connect.challenge`` (a device signs its nonce and ts).
        self.challenge: dict[str, Any] = {}
        self.policy = settings.WINGMAN.policy  # as it opened (settings.WINGMAN: a few µs)
        self._max_buffered = self.policy.max_buffered_bytes
        #: Over ``maxBufferedBytes`` with an event that cannot be dropped: close 4008.
        self.slow = False

    @property
    def codec(self) -> Dialect:
        """The dialect, once the first frame fixed it."""
        if self.dialect is None:
            raise RuntimeError("no frame received yet")
        return self.dialect

    @property
    def established(self) -> bool:
        return self.identity is not None

    # socket events ----------------------------------------------------------------------
    @property
    def writes_last(self) -> bool:  # see the hub's Socket: a bridge session being long-polled
        return self._bridge is not None and self._bridge.writes_last

    async def opened(self) -> None:
        """Register, send ``connect.challenge`` and start the handshake clock."""
        self.hub.add(self)
        if self.hub.shutting_down:
            await self.close(CloseCode.SERVICE_RESTART)
            return
        self.challenge = {"nonce": secrets.token_urlsafe(16), "ts": now_ms()}
        await self._send(
            dumps({"type": "event", "event": ev.CONNECT_CHALLENGE, "payload": self.challenge})
        )
        timeout = self.policy.handshake_timeout_ms / 1000
        self._handshake_timer = asyncio.get_running_loop().call_later(
            timeout, self._handshake_expired
        )

    async def received(self, text: str | None = None, data: bytes | None = None) -> None:
        """Handle one inbound frame; never raises. Once closed, queued frames are dropped."""
        if self.closed:
            return
        self.hub.stats.messages_processed += 1
        try:
            await self._receive(text, data)
        except inbound.Reject as rej:
            self.hub.stats.frames_rejected += 1
            if rej.frame is not None:
                await self._send(rej.frame)
            await self.close(rej.code)
        except Exception as exc:
            if outage.is_outage(exc) and self.dialect is not None:
                self.hub.stats.frames_rejected += 1  # the socket stays open (outage.py)...
                await self._send(inbound.unavailable_reply(self.codec, text, data, exc))
                if not self.greeted and self.codec.handshake_first:  # ...unless one-shot
                    await self.close(CloseCode.TRY_AGAIN_LATER)
                return
            logger.exception("unexpected error handling a frame on %s", self.conn_id)
            await self.close(CloseCode.POLICY_VIOLATION)

    async def closed_by_peer(self) -> None:
        """The socket is gone (the ASGI server said so): forget it everywhere, if not yet."""
        self.closed = True
        self.hub.socket_closed(self)
        await self._forget()

    async def close(self, code: int) -> None:
        """Close the socket with ``code`` and forget the connection at once: the server may
        tell the consumer late (daphne waits for the peer's close reply) or never (a
        consumer that crashed), and its presence must not outlive the close."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.transport.close(code)
        except Exception:
            logger.debug("close %s of %s failed", code, self.conn_id, exc_info=True)
        await self._forget()

    async def _forget(self) -> None:
        """Unregister from the hub exactly once, whichever close path comes first."""
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        if self._forgotten:
            return
        self._forgotten = True
        try:
            await self.hub.unregister(self)
            if self.identity is not None and (authority := extensions.authority()) is not None:
                await authority.departed(self.conn_id, self.identity)
        except Exception:
            logger.exception("cleanup of %s failed", self.conn_id)

    async def _send(self, text: str, *, now: bool = True) -> None:
        """Send a frame unless the socket is closed (then it is dropped); replies leave
        ``now``, never held in the write-coalescing window (gateway/ws/writer.py)."""
        if not self.closed:
            await self.transport.send_text(text, now=now)

    def _handshake_expired(self) -> None:
        if not self.established and not self.closed:
            logger.info("closing %s: no handshake in time", self.conn_id)
            self.hub.spawn(self.close(CloseCode.HANDSHAKE_TIMEOUT))

    # frames ------------------------------------------------------------------------------
    async def _receive(self, text: str | None, data: bytes | None) -> None:
        size = len(text.encode("utf-8")) if text is not None else len(data or b"")
        if size > self.policy.max_payload:
            raise inbound.Reject(CloseCode.MESSAGE_TOO_BIG)
        first = self.dialect is None
        frame, problem = inbound.frame_or_problem(text, data)
        if first:
            self.dialect = detect(frame) if problem is None else None
            if self.dialect is None:
                raise inbound.Reject(CloseCode.POLICY_VIOLATION)
            self.subscriptions = set(self.dialect.default_events)
        # Every later frame counts, parseable or not: a flood of garbage costs the same.
        elif not await self._within_rate_limit(frame):
            return
        elif problem is not None:
            await self._reply_error(None, invalid(None, problem))
            return
        try:
            decoded = self.codec.decode(frame, first=first)
            if isinstance(decoded, Hello):
                await self._handshake(decoded)
            elif self.established:
                await self._dispatch(decoded)
            else:
                await self._call_before_auth(decoded)
        except FrameError as err:
            await self._reply_error(frame, err)

    async def _reply_error(self, frame: Any, err: FrameError) -> None:
        self.hub.stats.frames_rejected += 1
        if self.dialect is None:
            raise inbound.Reject(err.close or CloseCode.POLICY_VIOLATION)
        rid = err.request_id if err.request_id is not None else self.codec.request_id_of(frame)
        text = self.codec.encode_error(rid, err.error)
        if err.close is not None:
            raise inbound.Reject(err.close, text)
        await self._send(text)

    async def _within_rate_limit(self, frame: Any) -> bool:
        ident = self.identity
        key = ident.instance_id if ident and ident.instance_id else f"ip:{self.client_ip}"
        refusal = await inbound.ratelimit_refusal(key, frame, self.codec, self.policy)
        if refusal is None:
            return True
        self.hub.stats.frames_rejected += 1
        await self._send(refusal)
        return False

    # handshake ---------------------------------------------------------------------------
    async def _handshake(self, hello: Hello) -> None:
        fatal = self.codec.handshake_first
        if self.established:
            if hello.call is None:
                error = GatewayError(ErrorCode.INVALID_REQUEST, "already authenticated")
                raise FrameError(hello.request_id, error)
            return await self._dispatch(hello.call)  # a node registering again
        protocol = inbound.negotiate(hello, self.codec)
        try:
            grant = await admission.admit(
                hello,
                conn_id=self.conn_id,
                ip=self.client_ip,
                browser=self.browser,
                challenge=self.challenge,
                dialect=self.codec.name,
            )
        except GatewayError as error:
            self._auth_failures += 1
            text = self.codec.encode_hello_error(hello.request_id, error)
            if fatal or self._auth_failures >= MAX_AUTH_ATTEMPTS:
                raise inbound.Reject(CloseCode.POLICY_VIOLATION, text) from None
            await self._send(text)
            return
        if self.closed:  # closed while the credentials were checked (handshake timeout)
            return
        await self._establish(hello.client)
        if hello.client.scopes == [scopes.NODE]:  # a tool node: its invokes come here
            await self.join_topic(hello.client.node_topic)
        if hello.call is not None:  # the handshake's reply is the call's (wingman-node)
            self.greeted = True
            await self._dispatch(hello.call)
        else:
            greeting = Greeting(self.conn_id, self.identity, self.codec, grant)
            await self._send(await hello_ok_frame(self.hub, greeting, protocol, hello.request_id))
            self.greeted = True
        logger.debug("%s connected (%s, %s)", self.conn_id, self.codec.name, self.client_ip)
        await self._release_early_events()

    async def _release_early_events(self) -> None:
        """The handshake reply is out: events may flow, starting with any held back."""
        early, self._early = self._early or [], None
        for event in early:
            text = self.render_event(event)
            if text is not None:
                await self.send_event(text, now=event.name in ev.REQUEST_EVENTS)

    async def _establish(self, client: ClientIdentity) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        self.identity = client
        entry = inbound.presence_entry(
            self.conn_id,
            client,
            ip=self.client_ip,
            dialect=self.codec.name,
            connected_at=self.connected_at,
            ts=now_ms(),
        )
        self.hub.established(self, entry)

    async def _call_before_auth(self, call: Call) -> None:
        """jsonrpc before ``auth``: with auth off the first call establishes the connection
        (unless the dialect requires its handshake: then public methods only)."""
        if self.codec.hello_required or not auth.credentials_valid(token=None, password=None):
            method = registry.get(call.method)
            if method is None or not method.public:
                why = GatewayError(ErrorCode.UNAUTHORIZED, self.codec.before_hello)
                raise FrameError(call.request_id, why)
            await self._run(call, method)
            return
        await self._establish(
            ClientIdentity(client_id="jsonrpc", mode="rpc", scopes=list(scopes.OPERATOR_SCOPES))
        )
        await self._release_early_events()
        await self._dispatch(call)

    # calls -------------------------------------------------------------------------------
    async def _dispatch(self, call: Call) -> None:
        method = registry.get(call.method)
        if method is None:
            error = GatewayError(ErrorCode.INVALID_REQUEST, f"unknown method: {call.method}")
            raise FrameError(call.request_id, error)
        await self._run(call, method)

    async def _run(self, call: Call, method: Method) -> None:
        try:
            if self.identity is not None:
                scopes.check(self.identity.scopes, method.scope, method.name)
            params = method.params.model_validate(call.params or {})
        except ValidationError as exc:
            raise invalid(call.request_id, exc) from None
        except GatewayError as error:
            raise FrameError(call.request_id, error) from None
        ctx = CallContext(self, call.request_id)
        try:
            result = await method.handler(ctx, params)
        except GatewayError as error:
            await self._send(self.codec.encode_error(call.request_id, error))
            return
        except Exception as exc:
            error = inbound.handler_error(call.method, exc)
            await self._send(self.codec.encode_error(call.request_id, error))
            return
        reply = self.codec.encode_result(call.request_id, result)
        if reply is not None:
            await self._send(reply)
        for action in ctx.after_reply_actions:
            self.hub.spawn(self._guarded(call.method, action()))

    async def _guarded(self, method: str, work) -> None:
        try:
            await work
        except Exception as exc:
            if outage.is_outage(exc):
                outage.redis_state.failed(exc, f"following up {method}")
            else:
                logger.exception("follow-up of %s failed", method)

    async def send_followup(self, request_id: Any, payload: Any) -> None:
        """A second reply to a request (e.g. ``agent``'s final result), if still open."""
        text = self.codec.encode_followup(request_id, payload)
        if text is not None:
            await self._send(text)

    # the caller interface handlers see (gateway/rpc/context.py) --------------------------
    @property
    def dialect_name(self) -> str | None:
        return self.dialect.name if self.dialect is not None else None

    async def join_topic(self, topic: str) -> None:
        await self.hub.join_topic(self, topic)

    async def leave_topic(self, topic: str) -> None:
        await self.hub.leave_topic(self, topic)

    def bind_request(self, key: str, request_id: Any) -> None:
        self.bound_requests[key] = request_id

    def request_for(self, key: str) -> Any:
        return self.bound_requests.get(key)

    def requests(self) -> dict[str, Any]:
        return dict(self.bound_requests)

    # events ------------------------------------------------------------------------------
    def render_event(self, event: EncodedEvent) -> str | None:
        """The frame for ``event`` on this connection, or None when it does not want it."""
        if not self.established or self.closed or self.dialect is None:
            return None
        if not (
            event.targeted or event.name in self.subscriptions or event.name in ev.MANDATORY_EVENTS
        ):
            return None
        if self._early is not None:  # hello-ok not sent yet: keep the order
            self._early.append(event)
            return None
        self.seq += 1
        if self.transport.buffered_bytes() > self._max_buffered:
            if event.name in ev.DROPPABLE_EVENTS:
                self.hub.stats.events_dropped += 1
                return None
            self.slow = True
        request = self.bound_requests.get(event.key) if event.key is not None else None
        return event.render(self.dialect, self.seq, request)

    def send_event_nowait(self, text: str, *, now: bool = False) -> bool:
        """:meth:`send_event` with no coroutine when the transport can; False: await that."""
        nowait = None if self.slow else self._send_nowait
        return nowait is not None and (self.closed or nowait(text, now=now))

    async def send_event(self, text: str, *, now: bool = False) -> None:
        """Send a rendered event (``now``: an ``events.REQUEST_EVENTS`` one); a slow consumer
        is then closed 4008 (and its TCP connection dropped if it still does not read)."""
        await self._send(text, now=now)
        if self.slow and not self.closed:
            logger.warning(
                "closing slow consumer %s (%s bytes unread)",
                self.conn_id,
                self.transport.buffered_bytes(),
            )
            await self.close(CloseCode.SLOW_CONSUMER)
            self.transport.abort_later(SLOW_CONSUMER_ABORT_SECONDS)
