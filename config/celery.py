"""Celery application: two queues, JSON only, late acknowledgement.

`transactional` carries mail to one person (confirmations, manage links, notices)
and is served by its own worker process, so it never waits behind `bulk`, which
carries mailing batches and housekeeping.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tidings")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("transactional"), Queue("bulk"))
app.autodiscover_tasks()
