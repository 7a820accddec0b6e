"""Routes of the agents REST API (registered under /api/ by wingman/api_urls.py)."""

from rest_framework.routers import SimpleRouter

from agents.api import views


class OptionalSlashRouter(SimpleRouter):
    """Paths match with and without a trailing slash (seed 001 writes them without)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("agents", views.AgentViewSet, basename="agent")
router.register("bindings", views.BindingViewSet, basename="binding")
router.register("sessions", views.SessionViewSet, basename="session")
router.register("runs", views.RunViewSet, basename="run")

urlpatterns = router.urls
