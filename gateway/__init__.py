"""The control plane: protocol, consumer, methods, events, presence, auth, server."""
