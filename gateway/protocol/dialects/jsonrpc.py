"""The jsonrpc dialect of seed 003: ``{"id","method","params"?}`` → ``{"id","result"|"error"}``.

There is no handshake frame: ``auth {token|password}`` authenticates when auth is on, and
before it only ``ping`` and ``auth`` are allowed. Events arrive as
``{"event","payload","timestamp","seq"}`` for the events the client subscribed to.
"""

from __future__ import annotations

from typing import Any, Literal

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
)
from gateway.protocol.errors import GatewayError
from gateway.protocol.handshake import dump
from gateway.protocol.system import AuthParams


class JsonRpcRequest(Frame):
    """``{"id": int|str, "method": str, "params"?: object}`` (a ``jsonrpc: "2.0"`` is allowed)."""

    id: int | str
    method: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] | None = None
    jsonrpc: Literal["2.0"] | None = None


class JsonRpc(Dialect):
    """Seed 003's RPC envelope."""

    name = "jsonrpc"
    default_events = frozenset({events.SHUTDOWN})
    handshake_first = False

    @staticmethod
    def matches(frame: dict[str, Any]) -> bool:
        return "type" not in frame and "id" in frame and "method" in frame

    def request_id_of(self, frame: Any) -> Any:
        rid = frame.get("id") if isinstance(frame, dict) else None
        return rid if isinstance(rid, (int, str)) and not isinstance(rid, bool) else None

    def decode(self, frame: dict[str, Any], *, first: bool) -> Hello | Call:
        rid = self.request_id_of(frame)
        try:
            req = JsonRpcRequest.model_validate(frame)
        except ValidationError as exc:
            raise invalid(rid, exc) from None
        if req.method == "auth":
            try:
                params = AuthParams.model_validate(req.params or {})
            except ValidationError as exc:
                raise invalid(rid, exc) from None
            return Hello(
                request_id=req.id,
                client=ClientIdentity(client_id="jsonrpc", mode="rpc"),
                token=params.token,
                password=params.password,
            )
        return Call(request_id=req.id, method=req.method, params=req.params)

    def encode_result(self, request_id: Any, payload: Any) -> str:
        if isinstance(payload, Frame):
            payload = dump(payload)
        return dumps({"id": request_id, "result": payload})

    def encode_error(self, request_id: Any, error: GatewayError) -> str:
        body = error.as_dict()
        return dumps({"id": request_id, "error": body})

    def encode_hello_ok(self, request_id: Any, hello: dict[str, Any]) -> str:
        role = hello.get("auth", {}).get("role", "operator")
        return dumps({"id": request_id, "result": {"ok": True, "role": role}})

    def event_template(
        self, event: str, payload_json: str, state_version_json: str | None, ts: int
    ) -> tuple[str, str]:
        return (
            f'{{"event":{dumps(event)},"payload":{payload_json},"timestamp":{ts},"seq":',
            "}",
        )
