"""The Control UI's nodes and devices pages: shells their scripts (``ui/nodes.js``,
``ui/devices.js``) fill over the WebSocket (``node.*`` and ``device.*`` methods, kept current
by ``presence``, ``node.pair.*`` and ``device.pair.*`` events)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from gateway.ui.access import ui_login_required
from gateway.ui.views import script_page


@ui_login_required
def nodes(request: HttpRequest) -> HttpResponse:
    """Pending node requests, paired nodes with live status and host stats, invoke form."""
    return script_page(request, "nodes")


@ui_login_required
def devices(request: HttpRequest) -> HttpResponse:
    """Paired devices and pending device requests; revoke a token, remove a device."""
    return script_page(request, "devices")
