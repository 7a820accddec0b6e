from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        """Register the agent, chat and session methods, and the run service's hooks into
        every process: cancel/replay control messages (which may arrive before this process
        runs anything), the shutdown drain, /health figures and the lost-run sweeper."""
        from agents import (
            methods,  # noqa: F401
            selectors,
        )
        from agents.services.runs import local, sweep_forever
        from gateway.delivery import extensions

        extensions.register(
            extensions.Extension(
                name="agents",
                control={
                    local.CONTROL_CANCEL: local.on_cancel_control,
                    local.CONTROL_REPLAY: local.on_replay_control,
                },
                on_shutdown=local.shutdown,
                stats=local.stats,
                stored=selectors.stored_counts,
                background=(sweep_forever,),
                preload=("agents.runtime.runner",),
            )
        )
