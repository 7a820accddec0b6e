"""``/webhooks/<id>`` (the inbound endpoint) and OpenClaw's ``/hooks/agent`` and
``/hooks/wake``: each reads the request and hands it to one service (``services/
deliveries.py``, ``services/hooks.py``), which checks, logs and starts the run."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks.services import hooks
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
    return _answer(answer)


def _answer(answer) -> JsonResponse:
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


@csrf_exempt
async def hook_agent(request: HttpRequest) -> JsonResponse:
    """OpenClaw's ``POST /hooks/agent``."""
    return _answer(
        await hooks.hook_agent(
            method=request.method or "",
            headers=request.headers,
            query=request.GET,
            body=request.body,
        )
    )


@csrf_exempt
async def hook_wake(request: HttpRequest) -> JsonResponse:
    """OpenClaw's ``POST /hooks/wake``."""
    return _answer(
        await hooks.hook_wake(
            method=request.method or "",
            headers=request.headers,
            query=request.GET,
            body=request.body,
        )
    )
