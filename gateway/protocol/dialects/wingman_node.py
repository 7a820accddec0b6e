"""The wingman-node dialect (seed 000): swarm nodes, e.g. ``wingman gateway join``.

``register {name, capabilities?, token?, password?}`` is the handshake (the token, or the
password of a gateway in password mode, is checked like any credential) and the call
``nodes.register``: answered ``ack {nodeId, name}``. Then
``join_group`` → ``nodes.join`` (``ack {groupId, groupName}``), ``leave_group`` →
``nodes.leave``, ``broadcast {groupId, message}`` → ``nodes.broadcast`` (every other member
receives ``{"type":"broadcast","nodeId":<sender>,"groupId","payload":<message>,
"timestamp"}``), ``direct {targetNodeId, message}`` → ``nodes.direct`` (the target receives
``{"type":"direct","nodeId":<sender>,"targetNodeId","payload":<message>,"timestamp"}``),
``ping`` → ``pong``, ``pong`` (to the gateway's ``ping``, sent to a node silent for
``WINGMAN_NODE_PING_INTERVAL_MS``) answered with nothing, ``unregister``. Errors:
``{"type":"error","payload":{code, message}}`` with ``NOT_REGISTERED``,
``GROUP_NOT_FOUND``, ``NODE_NOT_FOUND``, ``RATE_LIMITED``, ``AUTH_FAILED``,
``MAX_NODES_REACHED``, ``INVALID_MESSAGE``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from gateway.protocol import events
from gateway.protocol.base import Frame
from gateway.protocol.dialects.base import (
    Call,
    ClientIdentity,
    Dialect,
    Hello,
    dumps,
    invalid,
    loads,
    now_ms,
)
from gateway.protocol.errors import ErrorCode, GatewayError


class NodeFrame(Frame):
    """``{"type", "nodeId"?, "groupId"?, "targetNodeId"?, "payload"?, "timestamp"?,
    "messageId"?}`` (seed 000 ``GatewayMessage``)."""

    type: str = Field(min_length=1, max_length=32)
    node_id: str | None = Field(default=None, alias="nodeId", max_length=64)
    group_id: str | None = Field(default=None, alias="groupId", max_length=200)
    target_node_id: str | None = Field(default=None, alias="targetNodeId", max_length=64)
    payload: Any = None
    timestamp: int | None = None
    message_id: str | None = Field(default=None, alias="messageId", max_length=128)


class RegisterPayload(Frame):
    name: str = Field(min_length=1, max_length=200)
    capabilities: list[str] = Field(default_factory=list, max_length=100)
    token: str | None = Field(default=None, max_length=4096)
    #: A gateway in password mode (``gateway.auth.mode: password``) checks this instead.
    password: str | None = Field(default=None, max_length=4096)


@dataclass(frozen=True, slots=True)
class _Req:
    """The frame's kind and the ids it named (replies echo them)."""

    kind: str
    node_id: str | None = None
    message_id: str | None = None


_CODES = {
    ErrorCode.INVALID_REQUEST: "INVALID_MESSAGE",
    ErrorCode.UNAUTHORIZED: "NOT_REGISTERED",
    ErrorCode.NOT_FOUND: "GROUP_NOT_FOUND",
}
#: frame type → the method it calls.
_METHODS = {
    "join_group": "nodes.join",
    "leave_group": "nodes.leave",
    "broadcast": "nodes.broadcast",
    "direct": "nodes.direct",
    "ping": "nodes.ping",
    "pong": "nodes.pong",
    "unregister": "nodes.unregister",
}


class WingmanNode(Dialect):
    """See the module docstring."""

    name = "wingman-node"
    #: nodes get only what is addressed to them (their rooms, directs, the gateway's ping)
    default_events = frozenset()
    hello_required = True
    before_hello = "node not registered: send register first"

    @staticmethod
    def matches(frame: dict[str, Any]) -> bool:
        return frame.get("type") in ("register", "ping")

    def request_id_of(self, frame: Any) -> Any:
        if not isinstance(frame, dict):
            return _Req("")
        kind, node_id, mid = frame.get("type"), frame.get("nodeId"), frame.get("messageId")
        return _Req(
            kind if isinstance(kind, str) else "",
            node_id if isinstance(node_id, str) else None,
            mid if isinstance(mid, str) else None,
        )

    # decode ---------------------------------------------------------------------------------
    def decode(self, frame: dict[str, Any], *, first: bool) -> Hello | Call:
        rid = self.request_id_of(frame)
        try:
            msg = NodeFrame.model_validate(frame)
        except ValidationError as exc:
            raise invalid(rid, exc) from None
        if msg.type == "register":
            return self._register(msg, rid)
        method = _METHODS.get(msg.type)
        if method is None:
            raise invalid(rid, f"unknown message type: {msg.type}")
        return Call(request_id=rid, method=method, params=self._params(msg, rid))

    def _register(self, msg: NodeFrame, rid: _Req) -> Hello:
        try:
            p = RegisterPayload.model_validate(msg.payload or {})
        except ValidationError as exc:
            raise invalid(rid, exc) from None
        params = {"name": p.name, "capabilities": p.capabilities}
        return Hello(
            request_id=rid,
            client=ClientIdentity(
                client_id=p.name,
                mode="node",
                # a rate-limit identity of its own (not the IP shared by many nodes)
                instance_id=f"node-{secrets.token_hex(8)}",
                display_name=p.name,
                role="node",
                caps=p.capabilities,
            ),
            token=p.token,
            password=p.password,
            call=Call(request_id=rid, method="nodes.register", params=params),
        )

    def _params(self, msg: NodeFrame, rid: _Req) -> dict[str, Any] | None:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        if msg.type == "join_group":
            return payload
        if msg.type == "leave_group":
            gid = payload.get("groupId") or msg.group_id
            return {"groupId": gid} if gid else {k: v for k, v in payload.items()}
        if msg.type == "broadcast":
            return {
                "groupId": payload.get("groupId") or msg.group_id,
                "message": payload.get("message"),
            }
        if msg.type == "direct":
            return {
                "targetNodeId": payload.get("targetNodeId") or msg.target_node_id,
                "message": payload.get("message"),
            }
        return None

    # encode ---------------------------------------------------------------------------------
    def _frame(self, kind: str, **fields: Any) -> str:
        body = {"type": kind, **{k: v for k, v in fields.items() if v is not None}}
        return dumps({**body, "timestamp": now_ms()})

    def encode_hello_ok(self, request_id: Any, hello: dict[str, Any]) -> str:
        return self._frame("ack", payload={"status": "connected"})

    def encode_hello_error(self, request_id: Any, error: GatewayError) -> str:
        code = "AUTH_FAILED" if error.code == ErrorCode.UNAUTHORIZED else str(error.code)
        return self._frame("error", payload={"code": code, "message": error.message})

    def encode_result(self, request_id: Any, payload: Any) -> str | None:
        kind = request_id.kind if isinstance(request_id, _Req) else ""
        if kind == "pong":
            return None
        if kind == "ping":
            return self._frame("pong", nodeId=request_id.node_id)
        if isinstance(payload, Frame):
            payload = payload.model_dump(by_alias=True, exclude_none=True)
        node_id = request_id.node_id if isinstance(request_id, _Req) else None
        if kind == "register":
            node_id = payload.get("nodeId")
        group_id = payload.get("groupId") if isinstance(payload, dict) else None
        mid = request_id.message_id if isinstance(request_id, _Req) else None
        return self._frame("ack", nodeId=node_id, groupId=group_id, messageId=mid, payload=payload)

    def encode_error(self, request_id: Any, error: GatewayError) -> str:
        code = _CODES.get(error.code, str(error.code))
        body: dict[str, Any] = {"code": code, "message": error.message}
        if error.retry_after_ms is not None:
            body["retryAfterMs"] = error.retry_after_ms
        mid = request_id.message_id if isinstance(request_id, _Req) else None
        return self._frame("error", messageId=mid, payload=body)

    def event_template(
        self, event: str, payload_json: str, state_version_json: str | None, ts: int
    ) -> tuple[str, ...]:
        if event == events.NODE_PING:
            return (dumps({"type": "ping", "timestamp": ts}),)
        if event == events.ROOM_MESSAGE:
            return (_broadcast_frame(loads(payload_json), ts),)
        if event == events.NODE_MESSAGE:
            p = loads(payload_json)
            direct = {
                "type": "direct",
                "nodeId": p["fromNodeId"],
                "targetNodeId": p["toNodeId"],
                "payload": p.get("message"),
                "timestamp": p.get("timestamp", ts),
            }
            return (dumps(direct),)
        return ("",)  # other events (agent streams, room.member, presence) are not sent

    def splice(self, template: tuple[str, ...], seq: int, event: Any, request: Any) -> str | None:
        return template[0] or None


def _broadcast_frame(p: dict[str, Any], ts: int) -> str:
    """A ``room.message`` as a node sees it: who sent it (a node id, or ``agent:<id>`` /
    ``user:<id>`` / ``client:<id>`` for other senders) and the message as sent."""
    sender = p.get("from") or {}
    kind, sender_id = sender.get("kind"), sender.get("id")
    frame = {
        "type": "broadcast",
        "nodeId": sender_id if kind == "node" else f"{kind}:{sender_id}",
        "groupId": p.get("roomId"),
        "payload": p["payload"] if p.get("payload") is not None else p.get("content"),
        "timestamp": p.get("timestamp", ts),
    }
    if p.get("runId"):
        frame["runId"] = p["runId"]
    return dumps(frame)
