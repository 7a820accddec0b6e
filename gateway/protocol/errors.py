"""Protocol error codes and the exception handlers raise to produce an error reply."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The error codes of design/protocol.md (canonical ``Error.code``)."""

    INVALID_REQUEST = "INVALID_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    NOT_PAIRED = "NOT_PAIRED"
    AGENT_TIMEOUT = "AGENT_TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    #: A run's ``agent-error`` codes (not request errors): the model or a tool failed, or
    #: the process executing the run died.
    AGENT_ERROR = "AGENT_ERROR"
    EXECUTOR_LOST = "EXECUTOR_LOST"
    #: wingman-node (seed 000): a frame before ``register``; a ``direct`` to no such node;
    #: ``register`` at ``maxNodes``. (An unknown group is ``NOT_FOUND`` here; the
    #: wingman-node dialect says ``GROUP_NOT_FOUND``.)
    NOT_REGISTERED = "NOT_REGISTERED"
    NODE_NOT_FOUND = "NODE_NOT_FOUND"
    MAX_NODES_REACHED = "MAX_NODES_REACHED"


class GatewayError(Exception):
    """Raised anywhere below the codec layer; becomes an error reply in the caller's dialect."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms

    def as_dict(self) -> dict[str, Any]:
        """The canonical ``Error`` object."""
        out: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        if self.retryable is not None:
            out["retryable"] = self.retryable
        if self.retry_after_ms is not None:
            out["retryAfterMs"] = self.retry_after_ms
        return out


class CloseCode:
    """WebSocket close codes the gateway uses."""

    NORMAL = 1000
    PROTOCOL_ERROR = 1002
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    #: The handshake met an outage (Redis unreachable): reconnect later.
    TRY_AGAIN_LATER = 1013
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029
    HANDSHAKE_TIMEOUT = 4408
