from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self) -> None:
        """Register the ``webhooks.*`` methods."""
        from webhooks import methods  # noqa: F401
