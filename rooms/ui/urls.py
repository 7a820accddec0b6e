"""The rooms page of the Control UI (mounted in the ``ui`` namespace by wingman/urls.py)."""

from django.urls import path

from rooms.ui import views

urlpatterns = [
    path("rooms/", views.rooms, name="rooms"),
]
