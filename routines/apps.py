from django.apps import AppConfig


class RoutinesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "routines"

    def ready(self) -> None:
        """Register the ``routines.*`` and OpenClaw ``cron.*`` methods."""
        from routines import methods  # noqa: F401
