from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        # The agent, chat and session methods on the gateway's registry, and the run
        # service's hooks into every process (cancel control messages, shutdown, stats).
        from agents import methods  # noqa: F401
        from agents.services.runs import EXTENSION
        from gateway.delivery import extensions

        extensions.register(EXTENSION)
