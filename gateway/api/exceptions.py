"""Errors of the services, as DRF responses (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``).

- Django's ``ValidationError`` (services raise it keyed by model field) → 400 with
  ``{field: [messages]}``; a view may rename fields to its API names (``api_field_names``).
- ``GatewayError`` (the run and session services share it with the WebSocket methods) →
  the status of its code, body ``{"detail": message, "code": CODE}`` (plus
  ``retryAfterMs`` and a ``Retry-After`` header when it says when to retry).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from pydantic import ValidationError as PydanticValidationError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from gateway.protocol.errors import ErrorCode, GatewayError

STATUS_OF_CODE = {
    ErrorCode.INVALID_REQUEST: status.HTTP_400_BAD_REQUEST,
    ErrorCode.UNAUTHORIZED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.CONFLICT: status.HTTP_409_CONFLICT,
    ErrorCode.RATE_LIMITED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.PAYLOAD_TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
}


class GatewayAPIError(exceptions.APIException):
    """A ``GatewayError`` with its HTTP status."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(detail=error.message, code=str(error.code))
        self.status_code = STATUS_OF_CODE.get(error.code, status.HTTP_400_BAD_REQUEST)
        self.retry_after_ms = error.retry_after_ms
        if error.retry_after_ms is not None:
            self.wait = math.ceil(error.retry_after_ms / 1000)  # DRF's Retry-After header


def validation_detail(exc: DjangoValidationError, names: dict[str, str] | None = None) -> Any:
    """``{api_field: [messages]}`` (or a list of messages when the error has no field)."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": exc.messages}
    names = names or {}
    return {names.get(field, field): messages for field, messages in exc.message_dict.items()}


def pydantic_detail(exc: PydanticValidationError) -> dict[str, Any]:
    """``{field: [messages]}`` by wire name, nested like the input, from a protocol model's
    error (``non_field_errors`` for the body as a whole)."""
    detail: dict[str, Any] = {}
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        *parents, field = [str(part) for part in error["loc"]] or ["non_field_errors"]
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        node = detail
        for part in parents:
            if not isinstance(node.get(part, {}), dict):
                break  # the parent itself was refused; that message says enough
            node = node.setdefault(part, {})
        else:
            node.setdefault(field, []).append(message.removeprefix("Value error, "))
    return detail


def exception_handler(exc: Exception, context: dict[str, Any]):
    """DRF's handler, plus the two service exceptions; every ``{"detail"}`` body gets its
    ``code``."""
    if isinstance(exc, DjangoValidationError):
        names = getattr(context.get("view"), "api_field_names", None)
        exc = exceptions.ValidationError(validation_detail(exc, names))
    elif isinstance(exc, GatewayError):
        exc = GatewayAPIError(exc)
    elif isinstance(exc, Http404):  # DRF converts these two too, but after codes are read
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(exc, exceptions.APIException)
        and isinstance(response.data, dict)
        and set(response.data) == {"detail"}
    ):
        codes = exc.get_codes()
        if isinstance(codes, str):
            response.data["code"] = codes
        if getattr(exc, "retry_after_ms", None) is not None:
            response.data["retryAfterMs"] = exc.retry_after_ms
    return response
