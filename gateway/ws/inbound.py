"""What arrives on a socket, before the connection acts on it: the frame's JSON, the
protocol version both sides speak, and the errors that end a socket or a call."""

from __future__ import annotations

import json
import logging
from typing import Any

from gateway.protocol import PROTOCOL_MAX, PROTOCOL_MIN
from gateway.protocol.dialects.base import ClientIdentity, Dialect, Hello, loads
from gateway.protocol.errors import CloseCode, ErrorCode, GatewayError
from gateway.security import ratelimit
from gateway.state import outage
from wingman.config import PolicyConfig

logger = logging.getLogger("gateway.ws.connection")


class Reject(Exception):
    """Close the socket now, optionally after sending one last frame."""

    def __init__(self, code: int, frame: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.frame = frame


def parse(text: str | None, data: bytes | None) -> Any:
    """The frame's JSON value; raises ValueError for binary non-UTF-8, empty or non-JSON."""
    if text is None:
        if data is None:
            raise ValueError("empty frame")
        text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    try:
        return loads(text)
    except ValueError:
        pass  # what orjson refuses, the standard decoder decides (as it always did)
    if not text.strip():
        raise ValueError("empty frame")
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("frame nested too deeply") from exc


def frame_or_problem(text: str | None, data: bytes | None) -> tuple[Any, str | None]:
    """(the frame's JSON object, None), or (None, why it is not a request object)."""
    try:
        frame = parse(text, data)
    except ValueError as exc:
        return None, f"invalid frame: {exc}"
    if not isinstance(frame, dict):
        return None, "invalid frame: not a JSON object"
    return frame, None


def handler_error(method: str, exc: Exception) -> GatewayError:
    """A handler raised: UNAVAILABLE, retryable when Redis is down, else a logged crash."""
    if outage.is_outage(exc):
        outage.redis_state.failed(exc, f"running {method}")
        return outage.unavailable(exc)
    logger.exception("handler %s crashed", method)
    return GatewayError(ErrorCode.UNAVAILABLE, f"{method} failed; see gateway log")


def unavailable_reply(codec: Dialect, text: str | None, data: bytes | None, exc: Exception) -> str:
    """Redis is down: the request's UNAVAILABLE reply (retryable); the socket stays open
    (gateway/state/outage.py), unless it was a one-shot handshake: then close 1013."""
    outage.redis_state.failed(exc, "handling a request")
    rid = codec.request_id_of(parse(text, data))  # it parsed once already
    return codec.encode_error(rid, outage.unavailable(exc))


def negotiate(hello: Hello, codec: Dialect) -> int:
    """The highest protocol version both sides speak; ``Reject`` (close 1002) when none."""
    if hello.min_protocol is None or hello.max_protocol is None:
        return PROTOCOL_MAX
    protocol = min(hello.max_protocol, PROTOCOL_MAX)
    if protocol < max(hello.min_protocol, PROTOCOL_MIN):
        error = GatewayError(
            ErrorCode.INVALID_REQUEST,
            f"protocol mismatch: server speaks {PROTOCOL_MIN}..{PROTOCOL_MAX}, "
            f"client {hello.min_protocol}..{hello.max_protocol}",
            details={"expectedProtocol": {"min": PROTOCOL_MIN, "max": PROTOCOL_MAX}},
        )
        raise Reject(CloseCode.PROTOCOL_ERROR, codec.encode_hello_error(hello.request_id, error))
    return protocol


def presence_entry(
    conn_id: str,
    client: ClientIdentity,
    *,
    ip: str | None,
    dialect: str,
    connected_at: int,
    ts: int,
) -> dict[str, Any]:
    """A connection's presence entry (fields it does not know are left out)."""
    entry = {
        "connId": conn_id,
        "host": client.display_name or client.client_id,
        "ip": ip,
        "version": client.version,
        "mode": client.mode,
        "role": client.role,
        "clientId": client.client_id,
        "instanceId": client.instance_id,
        "displayName": client.display_name,
        "platform": client.platform,
        "deviceId": client.device_id,
        "dialect": dialect,
        "connectedAt": connected_at,
        "ts": ts,
    }
    return {k: v for k, v in entry.items() if v is not None}


async def ratelimit_refusal(
    key: str, frame: Any, codec: Dialect, policy: PolicyConfig
) -> str | None:
    """None when the frame is within the rate limit (the connection's ``policy``), else the
    error reply to send; raises :class:`Reject` (close 4029) once as many were refused as
    allowed (sustained abuse)."""
    limit = policy.rate_limit_per_minute
    decision = await ratelimit.hit(key, limit)
    if decision.allowed:
        return None
    error = GatewayError(
        ErrorCode.RATE_LIMITED,
        f"rate limit exceeded ({limit} requests/min)",
        retryable=True,
        retry_after_ms=decision.retry_after_ms,
    )
    text = codec.encode_error(codec.request_id_of(frame), error)
    if decision.excess > limit:
        raise Reject(CloseCode.RATE_LIMITED, text)
    return text
