"""``/api/``: the REST API (DRF) and its OpenAPI schema (drf-spectacular).

Each app contributes its routes; ViewSets register on the router (plain CRUD), APIViews
with logic are listed as paths (design/style.md "DRF").
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
