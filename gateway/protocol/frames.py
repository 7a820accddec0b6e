"""Canonical dialect frames: req / res / event (design/protocol.md, "Canonical dialect")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.protocol.base import Frame

NonEmpty = Field(min_length=1, max_length=256)


class ErrorShape(Frame):
    """``Error = {code, message, details?, retryable?, retryAfterMs?}``."""

    code: str = Field(min_length=1)
    message: str = Field(min_length=1)
    details: dict[str, Any] | None = None
    retryable: bool | None = None
    retry_after_ms: int | None = Field(default=None, alias="retryAfterMs")


class RequestFrame(Frame):
    """``{"type":"req","id","method","params"?}``."""

    type: Literal["req"]
    id: str = NonEmpty
    method: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] | None = None


class ResponseFrame(Frame):
    """``{"type":"res","id","ok","payload"?,"error"?}``."""

    type: Literal["res"]
    id: str = Field(min_length=1)
    ok: bool
    payload: Any = None
    error: ErrorShape | None = None


class EventFrame(Frame):
    """``{"type":"event","event","payload"?,"seq","stateVersion"?}``."""

    type: Literal["event"]
    event: str
    payload: Any = None
    seq: int | None = Field(default=None, ge=1)
    state_version: dict[str, int] | None = Field(default=None, alias="stateVersion")
