"""Control UI pages for webhooks: list, create, edit, enable/disable, rotate the secret,
send a test delivery, delete. Server-side forms calling ``webhooks/services``; a new secret
waits in the login session, sealed like the stored one (``webhooks/secrets.py``), until the
redirect's page shows it, once, and forgets it."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from gateway.protocol.errors import GatewayError
from gateway.ui.access import ui_login_required
from webhooks import probe, secrets, selectors, services, snippets
from webhooks.models import Webhook
from webhooks.ui.forms import WebhookForm

RECENT_DELIVERIES = 20


def _secret_key(webhook_id: str) -> str:
    return f"webhooks.secret.{webhook_id}"


def _keep_secret(request: HttpRequest, webhook_id: str, secret: str) -> None:
    request.session[_secret_key(webhook_id)] = secrets.seal(secret)


def _take_secret(request: HttpRequest, webhook_id: str) -> str | None:
    sealed = request.session.pop(_secret_key(webhook_id), None)
    return secrets.unseal(sealed) if sealed else None


def _get(webhook_id: str) -> Webhook:
    webhook = selectors.webhook_get(webhook_id=webhook_id)
    if webhook is None:
        raise Http404(f"no webhook {webhook_id!r}")
    return webhook


@ui_login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = selectors.webhook_queryset().select_related("agent")
    return render(request, "ui/webhooks.html", {"nav": "webhooks", "webhooks": webhooks})


@ui_login_required
@require_http_methods(["GET", "POST"])
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook, secret = services.webhook_create(
                id=form.cleaned_data["id"] or None, **form.service_fields()
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            _keep_secret(request, webhook.id, secret)
            messages.success(request, f"Webhook {webhook.id!r} created.")
            return redirect("ui:webhook-edit", webhook_id=webhook.id)
    context = {"nav": "webhooks", "form": form, "webhook": None}
    return render(request, "ui/webhook_form.html", context, status=400 if form.errors else 200)


@ui_login_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook = _get(webhook_id)
    form = WebhookForm(request.POST or None, webhook=webhook)
    if request.method == "POST" and form.is_valid():
        try:
            services.webhook_update(webhook=webhook, **form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
            webhook = _get(webhook_id)  # the service changed nothing; show what is stored
        else:
            messages.success(request, f"Webhook {webhook.id!r} saved.")
            return redirect("ui:webhook-edit", webhook_id=webhook.id)
    return _webhook_page(request, webhook, form)


def _webhook_page(request: HttpRequest, webhook: Webhook, form: WebhookForm) -> HttpResponse:
    secret = _take_secret(request, webhook.id)  # shown this once
    url = request.build_absolute_uri(selectors.endpoint_path(webhook.id))
    grace = settings.WINGMAN_WEBHOOK_SECRET_GRACE_SECONDS
    context = {
        "nav": "webhooks",
        "webhook": webhook,
        "form": form,
        "secret": secret,
        "endpoint_url": url,
        "curl_example": snippets.curl_command(url, secret),
        "gog_command": snippets.gog_command(url, secret),
        "thread_url": f"{reverse('ui:chat')}?session={quote(webhook.thread_key, safe='')}",
        "deliveries": selectors.delivery_queryset(webhook_id=webhook.id)[:RECENT_DELIVERIES],
        "recent_limit": RECENT_DELIVERIES,
        "grace_text": _duration(grace),
    }
    return render(request, "ui/webhook_form.html", context, status=400 if form.errors else 200)


def _duration(seconds: int) -> str:
    """``24 hours``, ``90 minutes``, ``45 seconds`` (the rotation grace, for the confirm)."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


@ui_login_required
@require_POST
def webhook_toggle(request: HttpRequest, webhook_id: str) -> HttpResponse:
    """Enable or disable (``enabled=true|false``); a disabled endpoint answers 403."""
    webhook = _get(webhook_id)
    choice = request.POST.get("enabled")
    if choice not in ("true", "false"):
        return HttpResponseBadRequest("enabled must be true or false")
    enabled = choice == "true"
    services.webhook_update(webhook=webhook, enabled=enabled)
    messages.success(request, f"Webhook {webhook_id!r} {'enabled' if enabled else 'disabled'}.")
    if request.POST.get("next") == "list":
        return redirect("ui:webhooks")
    return redirect("ui:webhook-edit", webhook_id=webhook_id)


@ui_login_required
@require_POST
def webhook_rotate(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook, secret = services.webhook_rotate_secret(webhook=_get(webhook_id))
    _keep_secret(request, webhook.id, secret)
    messages.success(request, "New secret made: copy it below.")
    return redirect("ui:webhook-edit", webhook_id=webhook_id)


@ui_login_required
@require_POST
def webhook_test(request: HttpRequest, webhook_id: str) -> HttpResponse:
    """Send a sample delivery through the real endpoint and say what it answered."""
    webhook = _get(webhook_id)
    try:
        result = probe.webhook_probe(webhook=webhook, base_url=probe.own_base_url(request.META))
    except GatewayError as exc:
        messages.error(request, f"Test not sent: {exc.message}.")
        return redirect("ui:webhook-edit", webhook_id=webhook_id)
    data = result.as_dict()
    if data["accepted"]:
        text = f"Test delivery accepted ({data['status']}): run {data['runId']}."
        messages.success(request, text)
    else:
        answer = data["response"]
        reason = answer.get("error") if isinstance(answer, dict) else answer
        messages.error(request, f"Test delivery refused ({data['status']}): {reason}.")
    return redirect("ui:webhook-edit", webhook_id=webhook_id)


@ui_login_required
@require_POST
def webhook_delete(request: HttpRequest, webhook_id: str) -> HttpResponse:
    services.webhook_delete(webhook=_get(webhook_id))
    messages.success(request, f"Webhook {webhook_id!r} deleted; its thread stays.")
    return redirect("ui:webhooks")
