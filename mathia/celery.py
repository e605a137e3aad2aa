"""The Celery application. Tasks live in each app's ``tasks.py`` and are thin adapters."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mathia.settings")

app = Celery("mathia")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
