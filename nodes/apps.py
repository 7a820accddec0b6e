from django.apps import AppConfig


class NodesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "nodes"

    def ready(self) -> None:
        """Register the device/node methods and the pairing authority the handshake asks."""
        from gateway.delivery import extensions
        from nodes import methods  # noqa: F401
        from nodes.services import authority, invoke, tools

        extensions.register(
            extensions.Extension(
                name="nodes",
                authority=authority.Authority(),
                stats=invoke.stats,
                tools={tools.PREFIX: tools.node_tools},
            )
        )
