"""The wire's JSON (``dialects.base.dumps`` and ``loads``): orjson's text where it can, the
standard encoder's answer where orjson refuses; read back as the standard decoder reads it. The text is the standard encoder's, except that a
float's exponent may be spelled differently (``1.5e-7`` for ``1.5e-07``): the same number."""

from __future__ import annotations

import json

import orjson
import pytest

from gateway.delivery.encoded import EncodedEvent
from gateway.protocol.dialects.base import dumps, loads


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


@pytest.mark.parametrize(
    "text",
    [
        '{"id": 18446744073709551616, "n": -9223372036854775809, "x": 2}',  # past 64 bits
        '[1180591620717411303425, "a 19-digit run in a string 1234567890123456789"]',
        '{"type": "req", "id": "1", "params": {"f": 0.1, "e": 1.5e-7, "u": "é ✓"}}',
        "9223372036854775807",
        '{"t": 1764650000123456789, "u": 18446744073709551615}',  # 64 bits: orjson's reading
        "[-9999999999999999999, 99999999999999999999, -1234567890123456789]",
        '"\\u00e9"',
    ],
)
def test_loads_reads_what_the_standard_decoder_reads(text):
    for data in (text, text.encode()):
        value = loads(data)
        assert value == json.loads(text)
        assert [type(v) for v in _leaves(value)] == [type(v) for v in _leaves(json.loads(text))]


def test_loads_refuses_what_orjson_refuses():
    lone_surrogate = '["a\ud800", 123456789012345678901]'  # a str that is not UTF-8
    for text in ("", "  ", "{", '{"a": NaN}', "[" * 1100 + "]" * 1100, b"\xff", lone_surrogate):
        with pytest.raises(orjson.JSONDecodeError):
            loads(text)


def _leaves(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
