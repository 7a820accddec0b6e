"""OpenAPI: every error status the API can answer is declared on each operation.

``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` points here. Views declare their success
responses (and special ones such as 202 or 409) with ``extend_schema``; this class adds
the errors that follow from how the view is built:

- 401 and 403 whenever the view authenticates (bad or missing credentials, or a browser
  session without a CSRF token);
- 404 when the path has parameters;
- 400 when the operation takes a body or query filters, or deletes.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """An error: a human-readable ``detail`` and a machine-readable ``code``."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)


#: 400 bodies: ``{field: [messages]}`` (nested for nested input, ``non_field_errors``
#: for errors of the whole body).
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "field name → list of messages (nested objects for nested fields)",
    "additionalProperties": {},
}

#: Query parameters that are not filters (pagination, DRF's renderer override).
_NOT_FILTERS = {"limit", "offset", "format"}


class WingmanAutoSchema(AutoSchema):
    """drf-spectacular's schema with the error responses above."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_statuses(operation):
            if code in responses:
                continue
            body = VALIDATION_ERROR_SCHEMA if code == "400" else ErrorSerializer
            responses[code] = self._get_response_for_code(body, code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation: dict) -> list[str]:
        codes = []
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if self.method in ("POST", "PUT", "PATCH", "DELETE") or query - _NOT_FILTERS:
            codes.append("400")
        if self.view.get_authenticators():
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        return codes


class BearerScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <gateway token | API token>``."""

    target_class = "gateway.api.authentication.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "the gateway token, or an API token created in the admin",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    """The Control UI's login session (unsafe methods need the CSRF token)."""

    target_class = "gateway.api.authentication.GatewaySessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


class NoAuthModeScheme(OpenApiAuthenticationExtension):
    """Auth mode ``none`` is a deployment choice, not a scheme a client picks: not listed."""

    target_class = "gateway.api.authentication.NoAuthModeAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []


def strip_trailing_slashes(result, generator, request, public):
    """Postprocessing hook: document ``/api/agents``, as seed 001 writes paths (both work)."""
    result["paths"] = {
        (path.rstrip("/") or "/"): item for path, item in result.get("paths", {}).items()
    }
    return result
