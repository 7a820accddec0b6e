"""Wingman Gateway: the Django project package (settings, ASGI app, URLs, CLI)."""

__version__ = "0.1.0"
