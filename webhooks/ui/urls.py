"""The webhooks pages of the Control UI (mounted in the ``ui`` namespace by wingman/urls.py).

Under ``integrations/``, not ``webhooks/``: ``/webhooks/<id>`` are the public endpoints,
which a reverse proxy may expose to the internet on their own."""

from django.urls import path

from webhooks.ui import views

urlpatterns = [
    path("integrations/webhooks/", views.webhook_list, name="webhooks"),
    # "+" cannot start a webhook id, so no webhook's page is shadowed by this one
    path("integrations/webhooks/+new/", views.webhook_create, name="webhook-create"),
    path("integrations/webhooks/<str:webhook_id>/", views.webhook_edit, name="webhook-edit"),
    path(
        "integrations/webhooks/<str:webhook_id>/toggle/",
        views.webhook_toggle,
        name="webhook-toggle",
    ),
    path(
        "integrations/webhooks/<str:webhook_id>/rotate/",
        views.webhook_rotate,
        name="webhook-rotate",
    ),
    path("integrations/webhooks/<str:webhook_id>/test/", views.webhook_test, name="webhook-test"),
    path(
        "integrations/webhooks/<str:webhook_id>/delete/",
        views.webhook_delete,
        name="webhook-delete",
    ),
]
