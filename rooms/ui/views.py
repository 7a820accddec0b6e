"""The Control UI's rooms page: a shell the page's script (``ui/rooms.js``) fills over the
WebSocket (``rooms.*`` methods, ``agent`` and ``room.*`` events)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from gateway.ui.access import ui_login_required
from gateway.ui.views import script_page


@ui_login_required
def rooms(request: HttpRequest) -> HttpResponse:
    """Rooms sidebar, one streaming column per member agent, live members, composer."""
    return script_page(request, "rooms")
