"""``/webhooks/<id>``: the inbound endpoint. Reads the request and hands it to
``services.deliveries.delivery_receive``, which checks, logs and starts the run."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks.services.deliveries import Inbound, delivery_receive


@csrf_exempt
async def webhook_inbound(request: HttpRequest, webhook_id: str) -> JsonResponse:
    """Any method: POST delivers (202), anything else is a 405 (after the body is read)."""
    answer = await delivery_receive(
        request=Inbound(
            webhook_id=webhook_id,
            method=request.method or "",
            headers=request.headers,
            query=request.GET,
            body=request.body,
            remote_addr=request.META.get("REMOTE_ADDR", ""),
        )
    )
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
