#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")
    from django.core.management import execute_from_command_line

    from wingman.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        sys.exit(f"wingman: config error: {exc}")


if __name__ == "__main__":
    main()
