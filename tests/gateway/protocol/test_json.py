"""The wire's JSON (``dialects.base.dumps``): orjson's text where it can, the standard
encoder's answer where orjson refuses. The text is the standard encoder's, except that a
float's exponent may be spelled differently (``1.5e-7`` for ``1.5e-07``): the same number."""

from __future__ import annotations

import json

import pytest

from gateway.delivery.encoded import EncodedEvent
from gateway.protocol.dialects.base import dumps


def reference(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "agent-stream", "text": "12:1764000000000000000 ", "seq": 3, "ok": True},
        {"nested": {"list": [1, 2.5, None, "x"], "empty": {}}, "unicode": "é ✓ 日本 \u2028"},
        ['quotes " and \\ backslash', "\n\t\x00 controls"],
        "a plain string",
        -(2**63),
        2**64 - 1,
    ],
)
def test_same_text_as_the_standard_encoder(obj):
    assert dumps(obj) == reference(obj)


def test_what_orjson_refuses_gets_the_standard_answer():
    # non-string keys and integers wider than 64 bits: orjson raises, json copes
    assert dumps({1: "a", None: "b"}) == reference({1: "a", None: "b"}) == '{"1":"a","null":"b"}'
    assert dumps({"big": 2**80}) == '{"big":1208925819614629174706176}'


def test_floats_are_the_same_numbers():
    values = [0.1, 1e20, 1.5e-7, 123456789.123, -0.0]
    assert json.loads(dumps(values)) == values


def test_what_neither_can_encode_is_a_type_error():
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_events_are_encoded_with_it():
    payload = {"runId": "r", "text": "héllo", "n": 2**70}
    event = EncodedEvent.build("agent", payload)
    assert event.payload_json == reference(payload)
    assert json.loads(event.payload_json) == payload
