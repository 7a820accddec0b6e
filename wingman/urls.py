"""Root URLs: gateway HTTP endpoints (health, stats, metrics, protocol schema), the REST API
under /api/, the admin, and the Control UI at / (the gateway's pages and the apps' pages in
one ``ui`` namespace). Errors are JSON for the API and non-browser clients
(gateway/http_errors.py)."""

from django.contrib import admin
from django.urls import include, path

from agents.ui import urls as agents_ui
from gateway.ui import urls as gateway_ui
from nodes.ui import urls as nodes_ui
from rooms.ui import urls as rooms_ui
from routines.ui import urls as routines_ui
from webhooks.ui import urls as webhooks_ui

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("wingman.api_urls")),
    path("", include("gateway.urls")),
    path("", include("webhooks.urls")),
    path(
        "",
        include(
            (
                gateway_ui.urlpatterns
                + agents_ui.urlpatterns
                + rooms_ui.urlpatterns
                + routines_ui.urlpatterns
                + webhooks_ui.urlpatterns
                + nodes_ui.urlpatterns,
                "ui",
            ),
            namespace="ui",
        ),
    ),
]

handler400 = "gateway.http_errors.bad_request"
handler403 = "gateway.http_errors.permission_denied"
handler404 = "gateway.http_errors.page_not_found"
handler500 = "gateway.http_errors.server_error"
