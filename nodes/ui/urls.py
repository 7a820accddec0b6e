"""The nodes and devices pages of the Control UI (mounted in the ``ui`` namespace by
wingman/urls.py)."""

from django.urls import path

from nodes.ui import views

urlpatterns = [
    path("nodes/", views.nodes, name="nodes"),
    path("devices/", views.devices, name="devices"),
]
