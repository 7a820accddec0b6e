#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")
    from django.core.management import execute_from_command_line

    from wingman.config import ConfigError
    from wingman.database import check_driver

    try:
        check_driver()
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        print(f"wingman: config error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
