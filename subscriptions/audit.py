"""The audit trail: the one way an AuditEvent is written, and the one way one is deleted.

Who acted is recorded as they were at the time (a name snapshot), so the trail reads
the same after a user is renamed or deleted. The table is append-only: on PostgreSQL
a trigger (migration 0010) refuses UPDATE and DELETE, except for rows past
`AUDIT_RETENTION_DAYS` deleted by `audit_retention_purge`, which alone sets the
transaction-local flag the trigger looks for.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.utils import timezone

from subscriptions.models import AuditEvent

# What a view hands a service as the person acting (`request.user`), or None when no
# one is (a task, the shell).
Actor = User | AnonymousUser | None


def recorded_actor(actor: Actor) -> User | None:
    """The user an audit row, a draft or a legal hold names: an anonymous or unsaved
    one is nobody. The one place an `actor` is turned into a user or None."""
    return actor if isinstance(actor, User) and actor.pk else None


def actor_name(actor: Actor) -> str:
    """How the trail names someone: their username, and their full name where set."""
    user = recorded_actor(actor)
    if user is None:
        return "system"
    full = user.get_full_name()
    return f"{user.get_username()} ({full})" if full else user.get_username()


def audit_record(
    *,
    actor: Actor,
    action: str,
    campaign_id: int | None = None,
    target_type: str = "",
    target_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    """Write one event. `details` must hold no subscriber's personal data."""
    user = recorded_actor(actor)
    return AuditEvent.objects.create(
        actor=user, actor_name=actor_name(user), actor_is_operator=bool(user and user.is_superuser),
        action=action, campaign_id=campaign_id, target_type=target_type, target_id=target_id, details=details,
    )  # fmt: skip


def audit_retention_purge(*, now: Any = None) -> int:
    """Delete events older than AUDIT_RETENTION_DAYS: the one deletion the trigger allows."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    with transaction.atomic():
        _retention_flag("on")
        try:
            deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
        finally:
            # Transaction-local, but a caller's outer transaction would outlive this one.
            _retention_flag("off")
    return deleted


def _retention_flag(value: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('tidings.audit_retention', %s, true)", [value])
