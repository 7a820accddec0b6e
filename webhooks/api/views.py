"""The webhooks REST API: CRUD, rotate the secret, send a test delivery, read the delivery log.

Writes go through ``webhooks/services``; a service's ``ValidationError`` keyed by model field
becomes a 400 keyed by the API's field names (``api_field_names``) and nothing is saved.
The secret appears in a response twice only: on create and on rotate-secret.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from gateway.api.schema import ErrorSerializer
from gateway.protocol.webhooks import WebhookFields
from webhooks import probe, selectors, services, wire
from webhooks.api import serializers as s
from webhooks.models import Webhook

#: ``PUT`` replaces: what a setting left out becomes.
REPLACE_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "event_label": "",
    "preset": "none",
    "session_key": "",
    "ip_allowlist": [],
    "require_signature": False,
    "rate_limit": None,
}


@extend_schema(tags=["webhooks"])
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Webhooks: ``POST /webhooks/<id>`` endpoints that start an agent run per delivery."""

    queryset = Webhook.objects.select_related("agent")
    serializer_class = s.WebhookOutput
    lookup_value_regex = "[^/]+"
    api_field_names = wire.WIRE_NAMES

    @extend_schema(request=s.WebhookCreateInput, responses={201: s.WebhookSecretOutput})
    def create(self, request):
        """Create a webhook; the response holds its secret, shown this once."""
        params = self._input(s.WebhookCreateInput, request)
        webhook, secret = services.webhook_create(**wire.service_fields(params, create=True))
        return Response(wire.webhook_secret_data(webhook, secret), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.WebhookReplaceInput, responses={200: s.WebhookOutput})
    def update(self, request, pk=None):
        """Replace a webhook's settings (the ones left out get their defaults)."""
        webhook = self.get_object()
        params = self._input(s.WebhookReplaceInput, request)
        return self._save(webhook, REPLACE_DEFAULTS | wire.service_fields(params))

    @extend_schema(request=s.WebhookPatchInput, responses={200: s.WebhookOutput})
    def partial_update(self, request, pk=None):
        """Change some settings (``{"enabled": false}`` disables the endpoint: 403)."""
        webhook = self.get_object()
        params: WebhookFields = self._input(s.WebhookPatchInput, request)
        return self._save(webhook, wire.service_fields(params))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """Delete the webhook and its delivery log (its thread stays)."""
        services.webhook_delete(webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.RotateInput, responses={200: s.WebhookSecretOutput})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret (in this response only); the previous one keeps verifying for
        ``graceSeconds`` (default 24 h) so senders can switch without losing deliveries."""
        webhook = self.get_object()
        data = s.RotateInput(data=request.data, context={"webhook_id": webhook.id})
        data.is_valid(raise_exception=True)
        webhook, secret = services.webhook_rotate_secret(
            webhook=webhook, grace_seconds=data.validated_data.grace_seconds
        )
        return Response(wire.webhook_secret_data(webhook, secret))

    @extend_schema(
        request=None,
        responses={
            200: s.TestOutput,
            409: OpenApiResponse(
                ErrorSerializer, description="the secret was sealed under another SECRET_KEY"
            ),
            503: OpenApiResponse(ErrorSerializer, description="the endpoint could not be reached"),
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a sample payload through the real endpoint (an HTTP request to this server's
        ``/webhooks/<id>`` with the secret); 200 with what the endpoint answered, which is
        202 with the run when it accepted it, or its refusal (401, 403, 429, ...)."""
        webhook = self.get_object()
        result = probe.webhook_probe(webhook=webhook, base_url=probe.own_base_url(request.META))
        return Response(result.as_dict())

    @extend_schema(responses={200: s.DeliveryOutput(many=True)})
    @action(detail=True, methods=["get"], serializer_class=s.DeliveryOutput)
    def deliveries(self, request, pk=None):
        """The delivery log, newest first: accepted deliveries with their run, refused ones
        with the status and reason the sender got."""
        webhook = self.get_object()
        page = self.paginate_queryset(selectors.delivery_queryset(webhook_id=webhook.id))
        return self.get_paginated_response(s.DeliveryOutput(page, many=True).data)

    def _input(self, serializer_class, request) -> Any:
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def _save(self, webhook: Webhook, changes: dict[str, Any]) -> Response:
        webhook = services.webhook_update(webhook=webhook, **changes)
        return Response(selectors.webhook_data(webhook))
