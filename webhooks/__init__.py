"""Webhooks: outside systems triggering agents (built in the webhooks issue)."""
