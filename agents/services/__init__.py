"""Writes: agents, sessions and the one run service used by every source."""
