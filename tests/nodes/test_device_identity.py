"""Device signature verification: the recorded real node-host frames, test-made keys, and
every failure code (gateway/security/device.py)."""

from __future__ import annotations

import pytest

from gateway.protocol.errors import GatewayError
from gateway.security import device
from tests.fixtures import client_frames
from tests.nodes.signer import TestDevice


def _recorded_connects() -> list[dict]:
    found = []
    for name in (
        "openclaw-node-frames.jsonl",
        "openclaw-node-exec-denied-frames.jsonl",
        "openclaw-client-frames.jsonl",
    ):
        for conn in client_frames(name).values():
            first = conn[0]
            if first.get("method") == "connect" and "device" in first["params"]:
                found.append(first["params"])
    return found


def signed_of(params: dict, **override) -> device.SignedDevice:
    """The SignedDevice a gateway builds from a connect frame (token from ``auth``)."""
    d, c = params["device"], params["client"]
    fields = dict(
        device_id=d["id"],
        public_key=d["publicKey"],
        signature=d["signature"],
        signed_at=d["signedAt"],
        nonce=d["nonce"],
        client_id=c["id"],
        client_mode=c["mode"],
        role=params["role"],
        scopes=tuple(params["scopes"]),
        token=(params.get("auth") or {}).get("token"),
        platform=c.get("platform"),
        device_family=c.get("deviceFamily"),
    )
    fields.update(override)
    return device.SignedDevice(**fields)


def test_recorded_node_host_signatures_verify_with_the_v3_string() -> None:
    recorded = _recorded_connects()
    assert len(recorded) >= 3, "the fixtures hold the node host's signed connects"
    for params in recorded:
        d = signed_of(params)
        # signedAt echoes the challenge ts, and nonce the challenge nonce (the frames record
        # the client side only, so both come from the device block)
        device.verify(d, nonce=d.nonce, challenge_ts=d.signed_at, now_ms=d.signed_at + 5_000)
        assert device.payload_v3(d).startswith(f"v3|{d.device_id}|node-host|node|node||")
        assert device.payload_v3(d).endswith(f"|secret|{d.nonce}|linux|linux")


def test_recorded_frame_v3_string_matches_the_documented_one() -> None:
    params = client_frames("openclaw-node-frames.jsonl")[1][0]["params"]
    d = signed_of(params)
    assert device.payload_v3(d) == (
        "v3|8a0cebc400a51d1eb6745f04cb7ce838bb0790b3aca77efc43c6458fa0aa3b85|node-host|node|node"
        "||1795994562454|secret|6b2ac4c7-dfce-42d9-84d4-06c6150779c1|linux|linux"
    )


def _code(exc: pytest.ExceptionInfo[GatewayError]) -> str:
    assert exc.value.code == "INVALID_REQUEST"
    return exc.value.details["code"]


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"token": "other"}, device.SIGNATURE_INVALID),
        ({"scopes": ("operator.admin",)}, device.SIGNATURE_INVALID),
        ({"platform": "darwin"}, device.SIGNATURE_INVALID),
        ({"signature": "!!notbase64!!"}, device.SIGNATURE_INVALID),
        ({"public_key": "AAAA"}, device.PUBLIC_KEY_INVALID),
        ({"device_id": "0" * 64}, device.DEVICE_ID_MISMATCH),
    ],
)
def test_recorded_frame_tampered(override: dict, code: str) -> None:
    params = client_frames("openclaw-node-frames.jsonl")[1][0]["params"]
    d = signed_of(params, **override)
    with pytest.raises(GatewayError) as exc:
        device.verify(d, nonce=d.nonce, challenge_ts=d.signed_at, now_ms=d.signed_at)
    assert _code(exc) == code


def test_recorded_frame_against_another_challenge_or_too_late() -> None:
    d = signed_of(client_frames("openclaw-node-frames.jsonl")[1][0]["params"])
    with pytest.raises(GatewayError) as exc:
        device.verify(d, nonce="another-nonce", challenge_ts=d.signed_at, now_ms=d.signed_at)
    assert _code(exc) == device.NONCE_MISMATCH
    with pytest.raises(GatewayError) as exc:
        device.verify(d, nonce=d.nonce, challenge_ts=d.signed_at + 1, now_ms=d.signed_at)
    assert _code(exc) == device.SIGNATURE_EXPIRED
    late = d.signed_at + device.MAX_SKEW_MS + 1
    with pytest.raises(GatewayError) as exc:
        device.verify(d, nonce=d.nonce, challenge_ts=d.signed_at, now_ms=late)
    assert _code(exc) == device.SIGNATURE_EXPIRED
    device.verify(d, nonce=d.nonce, challenge_ts=d.signed_at, now_ms=late - 1)


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_test_made_keys_v3_and_v2(version: str) -> None:
    dev = TestDevice()
    challenge = {"nonce": "n-1", "ts": 1_700_000_000_000}
    params = dev.connect(challenge, version=version)["params"]
    d = signed_of(params)
    device.verify(d, nonce="n-1", challenge_ts=challenge["ts"], now_ms=challenge["ts"])
    other = TestDevice()
    forged = signed_of(params, public_key=other.public_key, device_id=other.device_id)
    with pytest.raises(GatewayError) as exc:
        device.verify(forged, nonce="n-1", challenge_ts=challenge["ts"], now_ms=challenge["ts"])
    assert _code(exc) == device.SIGNATURE_INVALID
