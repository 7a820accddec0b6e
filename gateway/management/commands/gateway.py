"""``python manage.py gateway <sub>``: the same commands as ``wingman gateway <sub>``."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from wingman import cli, config


class Command(BaseCommand):
    help = "Run and manage the gateway (same as `wingman gateway ...`)."
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_gateway_commands(parser)

    def handle(self, *args, **options) -> None:
        namespace = _Namespace(options)
        cli.apply_flags(namespace)
        # Settings were read before the flags were known: resolve the gateway config again.
        settings.WINGMAN = config.load()
        code = options["func"](namespace)
        if code:
            raise SystemExit(code)


class _Namespace:
    def __init__(self, options: dict) -> None:
        self.__dict__.update(options)

    def __getattr__(self, name: str):
        return None
