"""Frame models and dialect codecs, without a socket."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gateway.delivery.encoded import EncodedEvent
from gateway.protocol.dialects import detect
from gateway.protocol.dialects.base import Call, FrameError, Hello
from gateway.protocol.dialects.canonical import Canonical
from gateway.protocol.dialects.jsonrpc import JsonRpc
from gateway.protocol.errors import CloseCode, ErrorCode, GatewayError
from gateway.protocol.frames import EventFrame, RequestFrame, ResponseFrame
from gateway.protocol.handshake import ConnectParams
from gateway.rpc.schema import MODELS, protocol_schema
from tests.fixtures import client_frames


def fixture_frames(name: str) -> list[dict]:
    return [frame for frames in client_frames(name).values() for frame in frames]


@pytest.mark.parametrize(
    "frame", fixture_frames("openclaw-client-frames.jsonl"), ids=lambda f: f["id"][:12]
)
def test_every_real_openclaw_frame_decodes(frame):
    dialect = detect(frame)
    assert isinstance(dialect, Canonical)
    first = frame["method"] == "connect"
    decoded = dialect.decode(frame, first=first)
    if first:
        assert isinstance(decoded, Hello)
        assert decoded.client.client_id in ("cli", "gateway-client", "node-host")
        assert decoded.max_protocol == 4
    else:
        assert isinstance(decoded, Call) and decoded.method == frame["method"]


def test_node_connect_keeps_role_caps_and_device():
    node = next(
        f
        for f in fixture_frames("openclaw-client-frames.jsonl")
        if f.get("params", {}).get("role") == "node"
    )
    params = ConnectParams.model_validate(node["params"])
    assert params.device is not None and params.device.public_key
    assert "browser" in params.caps
    hello = Canonical().decode(node, first=True)
    assert hello.client.role == "node" and hello.client.mode == "node"


def test_undeclared_fields_are_rejected():
    with pytest.raises(ValidationError):
        RequestFrame.model_validate({"type": "req", "id": "1", "method": "x", "bogus": 1})
    params = {"minProtocol": 4, "maxProtocol": 4, "client": {"id": "c", "version": "1", "x": 1}}
    with pytest.raises(ValidationError):
        ConnectParams.model_validate(params)


def test_first_request_must_be_connect():
    with pytest.raises(FrameError) as err:
        Canonical().decode({"type": "req", "id": "a", "method": "health"}, first=True)
    assert err.value.close == CloseCode.POLICY_VIOLATION
    assert err.value.request_id == "a"


def test_invalid_request_after_handshake_keeps_socket():
    with pytest.raises(FrameError) as err:
        Canonical().decode({"type": "req", "method": "x"}, first=False)
    assert err.value.close is None and err.value.request_id == "invalid"
    assert err.value.error.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("frame", "name"),
    [
        ({"type": "req", "method": "connect"}, "canonical"),
        ({"type": "hello"}, "canonical"),
        ({"id": 1, "method": "ping"}, "jsonrpc"),
        ({"type": "connect"}, "wingman-client"),
        ({"id": 1}, None),
        ([], None),
    ],
)
def test_detect(frame, name):
    dialect = detect(frame)
    assert (dialect.name if dialect else None) == name


def test_jsonrpc_codec():
    rpc = JsonRpc()
    assert isinstance(rpc.decode({"id": 7, "method": "ping"}, first=True), Call)
    auth = rpc.decode({"id": 8, "method": "auth", "params": {"token": "t"}}, first=False)
    assert isinstance(auth, Hello) and auth.token == "t"
    assert json.loads(rpc.encode_result(7, {"pong": True})) == {"id": 7, "result": {"pong": True}}
    err = json.loads(rpc.encode_error(7, GatewayError(ErrorCode.NOT_FOUND, "gone")))
    assert err == {"id": 7, "error": {"code": "NOT_FOUND", "message": "gone"}}
    with pytest.raises(FrameError):
        rpc.decode({"id": {"x": 1}, "method": "ping"}, first=False)


def test_canonical_error_reply_always_has_code_and_message():
    text = Canonical().encode_error(
        "r1", GatewayError(ErrorCode.RATE_LIMITED, "slow down", retry_after_ms=5)
    )
    frame = ResponseFrame.model_validate_json(text)
    assert (
        frame.ok is False and frame.error.code == "RATE_LIMITED" and frame.error.retry_after_ms == 5
    )


def test_encoded_event_renders_each_dialect_with_its_seq():
    event = EncodedEvent.build("tick", {"ts": 1}, {"presence": 2, "health": 1})
    canonical = json.loads(event.render(Canonical(), 5))
    EventFrame.model_validate(canonical)
    assert canonical == {
        "type": "event",
        "event": "tick",
        "payload": {"ts": 1},
        "stateVersion": {"presence": 2, "health": 1},
        "seq": 5,
    }
    rpc = json.loads(event.render(JsonRpc(), 6))
    assert rpc == {"event": "tick", "payload": {"ts": 1}, "timestamp": event.ts, "seq": 6}


def test_envelope_round_trip():
    event = EncodedEvent.build("presence", {"entries": []})
    again = EncodedEvent.from_envelope(event.envelope())
    assert again.render(Canonical(), 1) == event.render(Canonical(), 1)
    assert event.envelope()["type"] == "gateway.event"


def test_schema_covers_every_model_and_method():
    schema = protocol_schema()
    assert {m.__name__ for m in MODELS} <= set(schema["$defs"])
    assert {"health", "ping", "subscribe"} <= set(schema["methods"])
    assert schema["$defs"]["RequestFrame"]["additionalProperties"] is False
