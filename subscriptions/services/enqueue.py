"""Hand work to a Celery task, by the task's registered name.

Services never import `subscriptions.tasks` (tasks import services, not the other way
round). They name the task instead; the app registers every task when Django starts
(apps.py), so the name resolves in web processes, workers and the in-process demo alike,
and routing (config/celery.py) and eager mode apply exactly as for `task.delay()`.
"""

from typing import Any

from celery import current_app
from django.db import transaction


def enqueue(task_name: str, *args: Any) -> None:
    """Queue the task now (use `enqueue_on_commit` inside a transaction)."""
    current_app.tasks[task_name].apply_async(args)


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Queue the task once the current transaction commits; nothing is queued if it rolls back."""
    transaction.on_commit(lambda: enqueue(task_name, *args))
