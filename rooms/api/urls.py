"""Routes of the rooms REST API (registered under /api/ by wingman/api_urls.py)."""

from rest_framework.routers import SimpleRouter

from rooms.api import views


class OptionalSlashRouter(SimpleRouter):
    """Paths match with and without a trailing slash (seed 001 writes them without)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("rooms", views.RoomViewSet, basename="room")

urlpatterns = router.urls
