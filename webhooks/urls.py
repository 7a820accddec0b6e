"""The webhooks' public endpoints (mounted at the root by wingman/urls.py)."""

from django.urls import path

from webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("webhooks/<str:webhook_id>", views.webhook_inbound, name="inbound"),
    path("hooks/agent", views.hook_agent, name="hook-agent"),
    path("hooks/wake", views.hook_wake, name="hook-wake"),
]
