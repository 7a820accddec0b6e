"""REST inputs validated by the WebSocket methods' pydantic models (``gateway/protocol/``):
the two APIs take the same input. A serializer's declared fields then only describe the body
for the OpenAPI schema; each app's test_api.py keeps them in step with the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers

from gateway.api.exceptions import pydantic_detail

#: Form posts from the browsable API carry the CSRF token as a field.
TRANSPORT_FIELDS = frozenset({"csrfmiddlewaretoken"})


def protocol_input(model: type[BaseModel], data: Any) -> Any:
    """``data`` (JSON, or a browsable-API form post without its transport fields) validated
    by ``model``; a 400 keyed by wire field name when it does not fit."""
    if isinstance(data, QueryDict):  # a form post from the browsable API
        data = data.dict()
    if isinstance(data, Mapping):
        data = {k: v for k, v in data.items() if k not in TRANSPORT_FIELDS}
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise serializers.ValidationError(pydantic_detail(exc)) from None


class ProtocolInput(serializers.Serializer):
    """Validated by ``model`` (a protocol model): unknown fields and bad values are 400s keyed
    by field; the declared fields only describe the body for the OpenAPI schema."""

    model: type[BaseModel]

    def to_internal_value(self, data) -> Any:
        return protocol_input(self.model, data)
