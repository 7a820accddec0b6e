"""The routines pages of the Control UI (mounted in the ``ui`` namespace by wingman/urls.py)."""

from django.urls import path

from routines.ui import views

urlpatterns = [
    path("routines/", views.routine_list, name="routines"),
    # "+" is not in generated ids; a routine called "+new" would need another path
    path("routines/+new/", views.routine_create, name="routine-create"),
    path("routines/<str:routine_id>/", views.routine_edit, name="routine-edit"),
    path("routines/<str:routine_id>/run/", views.routine_run, name="routine-run"),
    path("routines/<str:routine_id>/enabled/", views.routine_enabled, name="routine-enabled"),
    path("routines/<str:routine_id>/delete/", views.routine_delete, name="routine-delete"),
]
