"""Method handlers. Each module registers its methods on import (see ``gateway/apps.py``)."""

from gateway.rpc.registry import CallContext, registry

__all__ = ["CallContext", "registry"]
