"""The sweeper: claims past their lease become `unknown` (never sent again), mailings
whose send tasks were lost are restarted, and those done are completed.

Why `unknown` and not a resend: docs/adr/0003-at-most-once-sending-and-unknown.md.
"""

from collections import Counter

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from subscriptions.models import Delivery, Mailing
from subscriptions.services.sending import portable
from subscriptions.services.sending.claims import mailing_complete_if_done
from subscriptions.services.sending.send_tasks import enqueue_send_tasks, heartbeat_missing

_EXPIRE_CLAIMS = f"""
UPDATE subscriptions_delivery
SET status = '{Delivery.Status.UNKNOWN}', error = 'claim expired: the worker was lost mid-send'
WHERE status = '{Delivery.Status.SENDING}' AND claimed_at < now() - make_interval(secs => %s)
RETURNING mailing_id
"""  # noqa: S608 - the model's status constants


def deliveries_sweep() -> dict[str, int]:
    """Expire lost claims to `unknown`, restart mailings whose tasks vanished, finish the done."""
    expired = _claims_expire()
    restarted = completed = 0
    for mailing_id in Mailing.objects.filter(status=Mailing.Status.SENDING).values_list("pk", flat=True):
        if mailing_complete_if_done(mailing_id=mailing_id):
            completed += 1
        elif (
            heartbeat_missing(mailing_id)
            and Delivery.objects.of_mailing(mailing_id).filter(status=Delivery.Status.QUEUED).exists()
        ):
            enqueue_send_tasks(mailing_id=mailing_id, count=settings.SEND_PARALLELISM)
            restarted += 1
    return {"expired": sum(expired.values()), "restarted": restarted, "completed": completed}


def _claims_expire() -> Counter[int]:
    """Claims older than the lease become `unknown`, added to their mailings' counts; how many per mailing."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor != "postgresql":  # the demo's SQLite
            expired = portable.expire_claims(lease_seconds=settings.SEND_LEASE_SECONDS)
        else:
            cursor.execute(_EXPIRE_CLAIMS, [settings.SEND_LEASE_SECONDS])
            expired = Counter(row[0] for row in cursor.fetchall())
        for mailing_id, count in expired.items():
            Mailing.objects.filter(pk=mailing_id).update(unknown_count=F("unknown_count") + count)
    return expired
