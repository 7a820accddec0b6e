"""The Celery application (broker from settings; tasks are discovered in the apps)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wingman.settings")

app = Celery("wingman")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
