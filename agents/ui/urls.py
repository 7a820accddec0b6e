"""The agents pages of the Control UI (mounted in the ``ui`` namespace by wingman/urls.py)."""

from django.urls import path

from agents.ui import views

urlpatterns = [
    path("agents/", views.agent_list, name="agents"),
    # "+" cannot start an agent id, so no agent's page is shadowed by this one
    path("agents/+new/", views.agent_create, name="agent-create"),
    path("agents/<str:agent_id>/", views.agent_edit, name="agent-edit"),
    path("agents/<str:agent_id>/delete/", views.agent_delete, name="agent-delete"),
    path("agents/<str:agent_id>/bindings/", views.binding_create, name="binding-create"),
    path(
        "agents/<str:agent_id>/bindings/<int:binding_id>/delete/",
        views.binding_delete,
        name="binding-delete",
    ),
]
