"""Routes of the routines REST API (registered under /api/ by wingman/api_urls.py)."""

from agents.api.urls import OptionalSlashRouter
from routines.api import views

router = OptionalSlashRouter()
router.register("routines", views.RoutineViewSet, basename="routine")

urlpatterns = router.urls
