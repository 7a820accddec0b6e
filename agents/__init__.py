"""Agents: models, routing, runtime and the run service (built in the agents issue)."""
