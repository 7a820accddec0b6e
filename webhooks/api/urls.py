"""Routes of the webhooks REST API (registered under /api/ by wingman/api_urls.py)."""

from rest_framework.routers import SimpleRouter

from webhooks.api import views

router = SimpleRouter()
router.trailing_slash = "/?"  # paths match with and without a trailing slash, as agents'
router.register("webhooks", views.WebhookViewSet, basename="webhook")

urlpatterns = router.urls
