"""ASGI entry point: ``/bridge/*`` goes to the HTTP bridge (gateway/bridge/), other HTTP to
Django (static files for the Control UI served straight from
the apps' ``static/`` folders, no collectstatic step), WebSocket (``/`` and ``/ws``) to the
gateway."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from gateway.bridge.app import bridge_app  # noqa: E402
from gateway.ws.consumer import GatewayConsumer  # noqa: E402

websocket_urlpatterns = [
    path("", GatewayConsumer.as_asgi()),
    path("ws", GatewayConsumer.as_asgi()),
]

django_or_bridge = ProtocolTypeRouter(
    {"http": ASGIStaticFilesHandler(django_asgi_app), "websocket": URLRouter(websocket_urlpatterns)}
)


async def application(scope, receive, send):
    """The bridge's paths before anything else (no Django middleware on a long poll)."""
    if scope["type"] == "http" and scope["path"].startswith("/bridge/"):
        await bridge_app(scope, receive, send)
    else:
        await django_or_bridge(scope, receive, send)
