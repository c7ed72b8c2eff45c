"""Retention: personal data lives only as long as consent does.

Sweeps run from Celery beat on the `bulk` queue. Each works set-based, in batches
that commit on their own, so a long sweep never holds one huge transaction and a
crash part-way loses nothing: the next run carries on where it stopped.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from subscriptions.models import Campaign, ConsentEvent, DailyStat, Delivery, Subscriber, Subscription
from subscriptions.services.stats import stat_increment

EXPIRY_BATCH_SIZE = 5000


def pending_signups_expire(*, now: datetime.datetime | None = None) -> int:
    """Delete sign-ups nobody confirmed within their campaign's pending expiry.

    Returns how many were deleted. People on legal hold are kept. No suppression is
    written: an unconfirmed address never consented, and must be free to sign up again.
    """
    now = now or timezone.now()
    expired = 0
    for campaign_id, expiry_days in Campaign.objects.values_list("pk", "pending_expiry_days"):
        cutoff = now - datetime.timedelta(days=expiry_days)
        while deleted := _expire_batch(campaign_id=campaign_id, cutoff=cutoff, now=now):
            expired += deleted
    return expired


def _expire_batch(*, campaign_id: int, cutoff: datetime.datetime, now: datetime.datetime) -> int:
    with transaction.atomic():
        # Locking the rows re-checks the filter against a concurrent confirmation, and
        # SKIP LOCKED leaves anyone being confirmed right now to finish confirming.
        ids = list(
            Subscriber.objects.filter(
                campaign_id=campaign_id,
                status=Subscriber.Status.PENDING,
                legal_hold=False,
                created_at__lt=cutoff,
            )
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:EXPIRY_BATCH_SIZE]
        )
        if not ids:
            return 0
        Delivery.objects.filter(subscriber_id__in=ids).delete()
        ConsentEvent.objects.filter(subscriber_id__in=ids).delete()
        Subscription.objects.filter(subscriber_id__in=ids).delete()
        # The ORM's delete() would load every subscriber to cascade; their rows that
        # point here are already gone, so one plain DELETE is enough.
        deleted = Subscriber.objects.filter(pk__in=ids)._raw_delete(Subscriber.objects.db)
        stat_increment(
            campaign_id=campaign_id, metric=DailyStat.Metric.EXPIRED, count=deleted, day=timezone.localdate(now)
        )
    return deleted
