"""The gateway's part of the REST API: authentication, health and stats."""
