"""Test settings: the real settings module, read in a clean, throw-away environment.

Any WINGMAN_* / REDIS_URL / DATABASE_URL from the developer's shell is dropped so the
suite never touches ~/.wingman or a real deployment; tests opt into Redis explicitly.
"""

import os
import tempfile

for _name in list(os.environ):
    if _name.startswith("WINGMAN_") or _name in ("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"):
        del os.environ[_name]
os.environ["WINGMAN_STATE_DIR"] = tempfile.mkdtemp(prefix="wingman-test-")
os.environ["WINGMAN_ENV_FILE"] = os.devnull

from wingman.settings import *  # noqa: E402, F403
