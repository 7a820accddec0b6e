from django.apps import AppConfig


class GatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        # Registers the system methods on the method registry, and connects the Celery
        # worker signals that start a worker process's runtime (loop, seat) with it.
        # Bridge requests forwarded between gateway processes (gateway/bridge/forward.py).
        from gateway.bridge import forward
        from gateway.delivery import extensions
        from gateway.rpc import config, system  # noqa: F401
        from gateway.server import worker  # noqa: F401

        extensions.register(
            extensions.Extension(
                name="bridge",
                control={
                    forward.CONTROL_REQUEST: forward.on_request,
                    forward.CONTROL_REPLY: forward.on_reply,
                },
            )
        )
