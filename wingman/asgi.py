"""ASGI entry point: ``/bridge/*`` goes to the HTTP bridge (gateway/bridge/), the inbound
webhook endpoints to webhooks/asgi.py (neither has Django middleware), other HTTP to Django
(static files for the Control UI served straight from the apps' ``static/`` folders, no
collectstatic step), WebSocket (``/`` and ``/ws``) to the gateway."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from gateway.bridge.app import bridge_app  # noqa: E402
from gateway.ws.consumer import GatewayConsumer  # noqa: E402
from webhooks import asgi as webhooks_asgi  # noqa: E402

websocket_urlpatterns = [
    path("", GatewayConsumer.as_asgi()),
    path("ws", GatewayConsumer.as_asgi()),
]

django_http = ASGIStaticFilesHandler(django_asgi_app)


async def http(scope, receive, send):
    """``/bridge/*`` to the bridge, ``/webhooks/<id>`` and ``/hooks/*`` straight to the
    webhooks app (no Django middleware on a long poll or a flood); the rest to Django."""
    if scope["path"].startswith("/bridge/"):
        return await bridge_app(scope, receive, send)
    if webhooks_asgi.handles(scope):
        return await webhooks_asgi.application(scope, receive, send)
    return await django_http(scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": URLRouter(websocket_urlpatterns)})
