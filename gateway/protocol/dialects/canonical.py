"""The canonical dialect: ``req``/``res``/``event`` frames and the ``connect`` handshake,
plus seed 002's legacy ``hello`` handshake (design/protocol.md, "Canonical dialect")."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

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
from gateway.protocol.errors import CloseCode, GatewayError
from gateway.protocol.frames import RequestFrame
from gateway.protocol.handshake import ConnectParams, HelloError, HelloFrame, dump


def _payload(value: Any) -> Any:
    return dump(value) if isinstance(value, Frame) else value


class Canonical(Dialect):
    """OpenClaw-style framing; also what the legacy ``hello`` switches a connection to."""

    name = "canonical"
    default_events = frozenset({events.TICK, events.PRESENCE, events.SHUTDOWN})

    @staticmethod
    def matches(frame: dict[str, Any]) -> bool:
        return frame.get("type") in ("req", "hello")

    def request_id_of(self, frame: Any) -> Any:
        rid = frame.get("id") if isinstance(frame, dict) else None
        return rid if isinstance(rid, str) and rid else "invalid"

    def decode(self, frame: dict[str, Any], *, first: bool) -> Hello | Call:
        rid = self.request_id_of(frame)
        close = CloseCode.POLICY_VIOLATION if first else None
        if frame.get("type") == "hello":
            if not first:
                raise invalid(rid, "handshake already completed")
            return self._decode_hello(frame)
        try:
            req = RequestFrame.model_validate(frame)
        except ValidationError as exc:
            raise invalid(rid, exc, close) from None
        if req.method == "connect":
            if not first:
                raise invalid(rid, "handshake already completed")
            return self._decode_connect(req)
        if first:
            raise invalid(rid, "first request must be connect", close)
        return Call(request_id=req.id, method=req.method, params=req.params)

    def _decode_connect(self, req: RequestFrame) -> Hello:
        try:
            params = ConnectParams.model_validate(req.params or {})
        except ValidationError as exc:
            raise invalid(req.id, exc, CloseCode.POLICY_VIOLATION) from None
        c = params.client
        auth = params.auth
        return Hello(
            request_id=req.id,
            client=ClientIdentity(
                client_id=c.id,
                version=c.version,
                platform=c.platform,
                device_family=c.device_family,
                mode=c.mode,
                instance_id=c.instance_id,
                display_name=c.display_name,
                role=params.role or "operator",
                scopes=list(params.scopes or []),
                caps=list(params.caps or []),
                commands=list(params.commands or []),
                permissions=dict(params.permissions or {}),
                path_env=params.path_env,
            ),
            token=auth.token if auth else None,
            password=auth.password if auth else None,
            min_protocol=params.min_protocol,
            max_protocol=params.max_protocol,
            device=params.device,
        )

    def _decode_hello(self, frame: dict[str, Any]) -> Hello:
        try:
            hello = HelloFrame.model_validate(frame)
        except ValidationError as exc:
            err = invalid(None, exc, CloseCode.POLICY_VIOLATION)
            err.request_id = _LEGACY
            raise err from None
        c = hello.client
        return Hello(
            request_id=_LEGACY,
            client=ClientIdentity(
                client_id=c.name,
                version=c.version,
                platform=c.platform,
                mode=c.mode,
                instance_id=c.instance_id,
                caps=list(hello.caps or []),
            ),
            token=hello.auth.token if hello.auth else None,
            password=hello.auth.password if hello.auth else None,
            min_protocol=hello.min_protocol,
            max_protocol=hello.max_protocol,
        )

    def encode_result(self, request_id: Any, payload: Any) -> str:
        return dumps({"type": "res", "id": request_id, "ok": True, "payload": _payload(payload)})

    def encode_error(self, request_id: Any, error: GatewayError) -> str:
        if request_id is _LEGACY:
            return self.encode_hello_error(request_id, error)
        return dumps({"type": "res", "id": request_id, "ok": False, "error": error.as_dict()})

    def encode_hello_ok(self, request_id: Any, hello: dict[str, Any]) -> str:
        if request_id is _LEGACY:
            return dumps(hello)
        return self.encode_result(request_id, hello)

    def encode_hello_error(self, request_id: Any, error: GatewayError) -> str:
        if request_id is not _LEGACY:
            return self.encode_error(request_id, error)
        details = error.details or {}
        return dumps(
            dump(
                HelloError(
                    reason=error.message,
                    code=str(error.code),
                    expectedProtocol=details.get("expectedProtocol"),
                )
            )
        )

    def event_template(
        self, event: str, payload_json: str, state_version_json: str | None, ts: int
    ) -> tuple[str, str]:
        head = f'{{"type":"event","event":{dumps(event)},"payload":{payload_json}'
        if state_version_json is not None:
            head += f',"stateVersion":{state_version_json}'
        return head + ',"seq":', "}"


class _LegacyId:
    """Marks a request that came as a legacy ``hello`` frame (replies are hello-ok frames)."""

    def __repr__(self) -> str:
        return "<legacy hello>"


_LEGACY = _LegacyId()
