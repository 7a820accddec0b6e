from django.apps import AppConfig


class RoomsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"

    def ready(self) -> None:
        """Register the room and node methods, and the rooms' hooks into every process:
        live members leave when their connection closes, /health figures, the stale-node
        sweeper."""
        from gateway.delivery import extensions
        from rooms import (  # noqa: F401 (methods, node_methods: registered on import)
            methods,
            node_methods,
            selectors,
        )
        from rooms.runtime import roster
        from rooms.services import history, live, nodes

        extensions.register(
            extensions.Extension(
                name="rooms",
                on_disconnect=nodes.connection_closed,
                on_shutdown=history.history_flush,
                stats=roster.stats,
                report=live.groups_report,
                stored=selectors.stored_counts,
                background=(nodes.sweep_stale_forever,),
            )
        )
