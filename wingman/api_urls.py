"""``/api/``: the REST API (DRF) and its OpenAPI schema (drf-spectacular).

Each app contributes its routes; ViewSets register on a router (plain CRUD), APIViews
with logic are listed as paths (design/style.md "DRF"). Paths work with and without a
trailing slash (seed 001 writes them without).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway.api.views import HealthApi, StatsApi

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^health/?$", HealthApi.as_view(), name="api-health"),
    re_path(r"^stats/?$", StatsApi.as_view(), name="api-stats"),
    path("", include("agents.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("routines.api.urls")),
    path("", include("rooms.api.urls")),
]
