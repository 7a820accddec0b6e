"""The method layer: the registry every dialect calls through, the narrow call context
handlers get, the system methods and the ``hello-ok`` snapshot."""

from gateway.rpc.context import CallContext
from gateway.rpc.registry import registry

__all__ = ["CallContext", "registry"]
