from django.apps import AppConfig


class RoutinesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "routines"

    def ready(self) -> None:
        """Register the ``routines.*`` and OpenClaw ``cron.*`` methods, and the routines'
        hooks into every process: the embedded scheduler (a gateway without a broker runs
        beat's scheduler itself), the sweeper that records the end of runs whose follower
        died, and the Status page counts."""
        from gateway.delivery import extensions
        from routines import (
            methods,  # noqa: F401
            scheduler,
            selectors,
        )
        from routines.services.settle import sweep_forever

        extensions.register(
            extensions.Extension(
                name="routines",
                stored=selectors.counts,
                background=(scheduler.scheduler_forever, sweep_forever),
            )
        )
