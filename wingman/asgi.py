"""ASGI entry point: HTTP goes to Django (static files for the Control UI served straight from
the apps' ``static/`` folders, no collectstatic step), WebSocket (``/`` and ``/ws``) to the
gateway."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from gateway.ws.consumer import GatewayConsumer  # noqa: E402

websocket_urlpatterns = [
    path("", GatewayConsumer.as_asgi()),
    path("ws", GatewayConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {"http": ASGIStaticFilesHandler(django_asgi_app), "websocket": URLRouter(websocket_urlpatterns)}
)
