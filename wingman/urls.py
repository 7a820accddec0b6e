"""Root URLs: gateway HTTP endpoints (health, stats, metrics, protocol schema) and admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("gateway.urls")),
]
