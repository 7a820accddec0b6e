"""The Control UI: Django templates plus plain JavaScript, served by the gateway itself.

Mounted with the apps' pages (``agents/ui/urls.py``, ...) in one ``ui`` namespace by
``wingman/urls.py``.
"""

from django.urls import path

from gateway.ui import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("status/", views.status, name="status"),
]
