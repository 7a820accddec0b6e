"""Root URLs: gateway HTTP endpoints (health, stats, metrics, protocol schema), the REST API
under /api/, the admin, and the Control UI at /."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("wingman.api_urls")),
    path("", include("gateway.urls")),
    path("", include("gateway.ui.urls")),
]

# Redis unreachable: a JSON 503 from any endpoint, not an HTML 500 (gateway/outage.py).
handler500 = "gateway.views.server_error"
