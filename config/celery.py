"""Celery application: two queues, JSON only, late acknowledgement.

`transactional` carries mail to one person (confirmations, manage links, notices)
and is served by its own worker process, so it never waits behind `bulk`, which
carries mailing batches and housekeeping.
"""

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tidings")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue is bound by its own name, so a message for one can never reach the other,
# on Redis or on any AMQP broker.
app.conf.task_queues = (Queue("transactional", routing_key="transactional"), Queue("bulk", routing_key="bulk"))
app.autodiscover_tasks()

# Mailing batches and sweeps go to `bulk`; everything else (one person's mail and
# data) to the default `transactional` queue. Routing lives here, in one place,
# rather than on each task (Celery 5.7 deprecates the task `queue` attribute).
BULK_TASKS = (
    "subscriptions.expire_pending_signups",
    "subscriptions.dispatch_due_mailings",
    "subscriptions.send_batch",
    "subscriptions.sweep_deliveries",
    "subscriptions.prune_webhook_events",
    "subscriptions.audit_retention",
    "subscriptions.end_campaigns",
    "subscriptions.end_campaign",
    "subscriptions.reconfirmation_sweep",
    "subscriptions.retention_sweep",
    "subscriptions.erase_withdrawn",
)
app.conf.task_routes = {name: {"queue": "bulk"} for name in BULK_TASKS}

# Periodic sweeps. Each expires after one period: if workers were down, beat's backlog
# of identical runs is dropped instead of running back to back when they return.
# Run exactly one beat process per deployment.
app.conf.beat_schedule = {
    # Sign-ups are recorded by the drain the first of them asks for; this one catches
    # up when such a task was lost (subscriptions/services/signup/stream.py).
    "drain-signups": {
        "task": "subscriptions.drain_signups",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "expire-pending-signups": {
        "task": "subscriptions.expire_pending_signups",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 15 * 60},
    },
    # Mailings are started by polling, never by long countdowns: a schedule lives in
    # the database, where staff can change or cancel it.
    "dispatch-due-mailings": {
        "task": "subscriptions.dispatch_due_mailings",
        "schedule": 15.0,
        "options": {"expires": 15},
    },
    "prune-webhook-events": {
        "task": "subscriptions.prune_webhook_events",
        "schedule": crontab(hour="3", minute="17"),
        "options": {"expires": 3600},
    },
    "audit-retention": {
        "task": "subscriptions.audit_retention",
        "schedule": crontab(hour="3", minute="27"),
        "options": {"expires": 3600},
    },
    "sweep-deliveries": {
        "task": "subscriptions.sweep_deliveries",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Campaign end: the first run after a campaign's last day erases it.
    "end-campaigns": {
        "task": "subscriptions.end_campaigns",
        "schedule": crontab(minute=5),
        "options": {"expires": 3600},
    },
    "reconfirmation-sweep": {
        "task": "subscriptions.reconfirmation_sweep",
        "schedule": crontab(minute=35),
        "options": {"expires": 3600},
    },
    # The safety net under erasure after withdrawal (see retention.withdrawn_erase).
    "erase-withdrawn": {
        "task": "subscriptions.erase_withdrawn",
        "schedule": crontab(minute="7-59/15"),
        "options": {"expires": 15 * 60},
    },
    "retention-sweep": {
        "task": "subscriptions.retention_sweep",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 24 * 3600},
    },
}
