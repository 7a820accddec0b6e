"""The Celery application (broker from settings; tasks are discovered in the apps).

Workers execute agent runs in the scaled setup (``WINGMAN_RUN_EXECUTOR=celery``); the
gateway app connects the signals that give each worker process its own event loop and
channel-layer seat when it starts (``gateway/server/worker.py``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")

app = Celery("wingman")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("WINGMAN_LOG_FORMAT", "").strip().lower() == "json":
    from celery.signals import setup_logging

    @setup_logging.connect
    def _json_logging(**kwargs) -> None:
        """``WINGMAN_LOG_FORMAT=json``: the worker and beat log like the gateway (settings'
        LOGGING, one JSON object per line) instead of Celery's own text format."""
        import logging.config

        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
