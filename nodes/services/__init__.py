"""Device pairing, node pairing and node.invoke (the only writers of the nodes models)."""
