"""The wingman-client dialect (seed 001): the Wingman CLI's and Control UI's frames.

``connect`` → ``res "gateway-ready"``; ``req:agent`` → ``event:agent`` frames carrying the
request's ``id`` until ``agent-complete`` / ``agent-error``; ``req:agent:cancel``;
``session_subscribe`` / ``session_unsubscribe``; ``broadcast {roomId, payload:{content}}``
→ ``ack {action:"broadcast", roomId, broadcastId, runIds, runs}`` then the room's agents'
``event:agent`` frames with the broadcast's ``id`` (each payload names its ``agentId``,
``runId`` and ``roomId``); errors as ``{"type":"error",...}``. Calls go to the same methods
as every other dialect (``agent``, ``agent.cancel``, ``sessions.subscribe``,
``rooms.broadcast.stream``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError

from gateway.protocol import events
from gateway.protocol.base import Frame
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
from gateway.protocol.handshake import Credentials


class WingmanClientInfo(Frame):
    instance_id: str = Field(alias="instanceId", min_length=1, max_length=128)
    client_type: str = Field(alias="clientType", min_length=1, max_length=64)
    version: str | None = Field(default=None, max_length=64)


class WingmanConnect(Frame):
    """``{"type":"connect","id","client","auth"?,"timestamp"}``."""

    type: Literal["connect"]
    id: str | None = Field(default=None, max_length=256)
    client: WingmanClientInfo | None = None
    auth: Credentials | None = None
    timestamp: int | None = None


class WingmanRequest(Frame):
    """Any other client frame: ``{"type", "id"?, "payload"?, "timestamp"?, ...}``."""

    type: str = Field(min_length=1, max_length=64)
    id: str | None = Field(default=None, max_length=256)
    payload: Any = None
    timestamp: int | None = None
    client_id: str | None = Field(default=None, alias="clientId", max_length=256)
    room_id: str | None = Field(default=None, alias="roomId", max_length=256)


class AgentRequestPayload(Frame):
    """``req:agent`` payload."""

    content: str = Field(min_length=1, max_length=200_000)
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    session_key: str | None = Field(default=None, alias="sessionKey", max_length=500)
    routing: dict[str, Any] | None = None
    attachments: list[Any] | None = None
    queue_if_busy: bool = Field(default=True, alias="queueIfBusy")
    execution: dict[str, Any] | None = None


class CancelPayload(Frame):
    request_id: str = Field(alias="requestId", min_length=1, max_length=256)


class SessionPayload(Frame):
    session_id: str = Field(alias="sessionId", min_length=1, max_length=500)


@dataclass(frozen=True, slots=True)
class _Req:
    """A request id plus what kind of frame asked (replies differ by kind)."""

    id: str | None
    kind: str


_CODES = {
    ErrorCode.INVALID_REQUEST: "INVALID_MESSAGE",
    ErrorCode.UNAUTHORIZED: "AUTH_REQUIRED",
}


class WingmanClient(Dialect):
    """See the module docstring."""

    name = "wingman-client"
    default_events = frozenset()

    @staticmethod
    def matches(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "connect"

    def request_id_of(self, frame: Any) -> Any:
        rid = frame.get("id") if isinstance(frame, dict) else None
        kind = frame.get("type") if isinstance(frame, dict) else None
        return _Req(rid if isinstance(rid, str) else None, kind if isinstance(kind, str) else "")

    # decode ---------------------------------------------------------------------------------
    def decode(self, frame: dict[str, Any], *, first: bool) -> Hello | Call:
        rid = self.request_id_of(frame)
        if frame.get("type") == "connect":
            if not first:
                raise invalid(rid, "already connected")
            return self._connect(frame, rid)
        if first:
            raise FrameError(
                rid,
                GatewayError(ErrorCode.UNAUTHORIZED, "send connect first"),
                CloseCode.POLICY_VIOLATION,
            )
        try:
            req = WingmanRequest.model_validate(frame)
            decoder = _DECODERS.get(req.type)
            if decoder is None:
                raise FrameError(
                    rid,
                    GatewayError(ErrorCode.INVALID_REQUEST, f"unknown message type: {req.type}"),
                )
            return decoder(req, _Req(req.id, req.type))
        except ValidationError as exc:
            raise invalid(rid, exc) from None

    def _connect(self, frame: dict[str, Any], rid: _Req) -> Hello:
        try:
            hello = WingmanConnect.model_validate(frame)
        except ValidationError as exc:
            raise invalid(rid, exc, CloseCode.POLICY_VIOLATION) from None
        if hello.client is None:
            raise invalid(rid, "missing client info", CloseCode.POLICY_VIOLATION)
        return Hello(
            request_id=_Req(hello.id, "connect"),
            client=ClientIdentity(
                client_id=hello.client.client_type,
                version=hello.client.version,
                mode=hello.client.client_type,
                instance_id=hello.client.instance_id,
            ),
            token=hello.auth.token if hello.auth else None,
            password=hello.auth.password if hello.auth else None,
        )

    # encode ---------------------------------------------------------------------------------
    def _frame(self, **fields: Any) -> str:
        return dumps({**{k: v for k, v in fields.items() if v is not None}, "timestamp": now_ms()})

    def encode_hello_ok(self, request_id: Any, hello: dict[str, Any]) -> str:
        return self._frame(type="res", id=request_id.id, ok=True, payload="gateway-ready")

    def encode_hello_error(self, request_id: Any, error: GatewayError) -> str:
        unauthorized = error.code == ErrorCode.UNAUTHORIZED
        message = "authentication failed" if unauthorized else error.message
        return self._frame(type="res", id=request_id.id, ok=False, payload=message)

    def encode_result(self, request_id: Any, payload: Any) -> str:
        if isinstance(payload, Frame):
            payload = payload.model_dump(by_alias=True, exclude_none=True)
        kind = request_id.kind
        if kind == "req:agent":
            ack = {"action": "agent", "status": "accepted", **payload}
            return self._frame(type="ack", id=request_id.id, payload=ack)
        if kind == "req:agent:cancel":
            status = "cancelled" if payload.get("cancelled") else "not_running"
            ack = {"action": "cancel", "requestId": payload.get("requestId"), "status": status}
            return self._frame(type="ack", id=request_id.id, payload=ack)
        if kind == "broadcast":
            ack = {"action": "broadcast", "status": "accepted", **payload}
            return self._frame(type="ack", id=request_id.id, payload=ack)
        if kind in ("session_subscribe", "session_unsubscribe"):
            ack = {
                "action": kind,
                "sessionId": payload.get("sessionKey"),
                "status": "subscribed" if payload.get("subscribed") else "unsubscribed",
            }
            return self._frame(type="ack", id=request_id.id, payload=ack)
        return self._frame(type="res", id=request_id.id, ok=True, payload=payload)

    def encode_followup(self, request_id: Any, payload: Any) -> str | None:
        return None  # the terminal event:agent frame is the end of the run for this client

    def encode_error(self, request_id: Any, error: GatewayError) -> str:
        if isinstance(request_id, _Req) and request_id.kind == "connect":
            # a refused connect is answered like a failed handshake: res ok:false "<reason>"
            return self._frame(type="res", id=request_id.id, ok=False, payload=error.message)
        if isinstance(request_id, _Req) and request_id.kind == "req:agent":
            # The Wingman CLI ends a run only on event:agent (complete or error).
            step = {
                "type": "agent-error",
                "error": error.message,
                "code": str(error.code),
                "timestamp": now_ms(),
            }
            return self._frame(
                type="event:agent", id=request_id.id, clientId="gateway", payload=step
            )
        code = _CODES.get(error.code, str(error.code))
        if error.message.startswith("unknown message type"):
            code = "UNKNOWN_MESSAGE_TYPE"
        rid = request_id.id if isinstance(request_id, _Req) else None
        body = {"code": code, "message": error.message}
        if error.retry_after_ms is not None:
            body["retryAfterMs"] = error.retry_after_ms
        return self._frame(type="error", id=rid, payload=body)

    def event_template(
        self, event: str, payload_json: str, state_version_json: str | None, ts: int
    ) -> tuple[str, ...]:
        head = f'{{"type":{dumps("event:" + event)}'
        tail = f',"clientId":"gateway","payload":{payload_json},"timestamp":{ts},"seq":'
        return head, tail, "}"

    def splice(self, template: tuple[str, ...], seq: int, event: Any, request: Any) -> str:
        head, tail, end = template
        if event.name == events.AGENT:
            rid = request.id if isinstance(request, _Req) else event.key
            return f'{head},"id":{dumps(rid)}{tail}{seq}{end}'
        return f"{head}{tail}{seq}{end}"


def _agent(req: WingmanRequest, rid: _Req) -> Call:
    p = AgentRequestPayload.model_validate(req.payload or {})
    params: dict[str, Any] = {"message": p.content, "queue": p.queue_if_busy}
    for key, value in (
        ("agentId", p.agent_id),
        ("sessionKey", p.session_key),
        ("routing", p.routing),
        ("attachments", p.attachments),
        ("execution", p.execution),
    ):
        if value is not None:
            params[key] = value
    return Call(request_id=rid, method="agent", params=params)


def _cancel(req: WingmanRequest, rid: _Req) -> Call:
    p = CancelPayload.model_validate(req.payload or {})
    return Call(request_id=rid, method="agent.cancel", params={"requestId": p.request_id})


def _session(method: str):
    def decode(req: WingmanRequest, rid: _Req) -> Call:
        p = SessionPayload.model_validate(req.payload or {})
        return Call(request_id=rid, method=method, params={"sessionKey": p.session_id})

    return decode


class BroadcastPayload(Frame):
    """``broadcast`` payload (seed 001: ``{"type":"broadcast","id","roomId","payload":
    {"content"}}``)."""

    content: str = Field(min_length=1, max_length=200_000)
    strategy: str | None = Field(default=None, max_length=12)


def _broadcast(req: WingmanRequest, rid: _Req) -> Call:
    p = BroadcastPayload.model_validate(req.payload or {})
    if not req.room_id:
        raise invalid(rid, "broadcast needs a roomId")
    params: dict[str, Any] = {"roomId": req.room_id, "message": p.content}
    if p.strategy is not None:
        params["strategy"] = p.strategy
    return Call(request_id=rid, method="rooms.broadcast.stream", params=params)


_DECODERS = {
    "broadcast": _broadcast,
    "req:agent": _agent,
    "req:agent:cancel": _cancel,
    "session_subscribe": _session("sessions.subscribe"),
    "session_unsubscribe": _session("sessions.unsubscribe"),
}
