"""The Control UI's agents pages (server-side forms over the agent service)."""
