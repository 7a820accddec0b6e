from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        # Registers the agent, chat and session methods on the gateway's registry.
        from agents import methods  # noqa: F401
