"""Whether a campaign may still send, and stopping a mailing that is sending: asked by
services.mailings (checks, cancel) and by the send loop alike."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from subscriptions.models import Campaign, Delivery, Mailing


def campaign_can_send(campaign: Campaign) -> bool:
    ended = campaign.ends_on is not None and campaign.ends_on < timezone.localdate()
    return campaign.status == Campaign.Status.ACTIVE and not ended


def mailing_stop(*, mailing: Mailing, reason: str, status: str = Mailing.Status.CANCELLED) -> int:
    """Skip whatever is still queued; batches already in flight finish and are counted."""
    with transaction.atomic():
        skipped = (
            Delivery.objects.of_mailing(mailing.pk)
            .filter(status=Delivery.Status.QUEUED)
            .update(status=Delivery.Status.SKIPPED, error=reason[:200])
        )
        Mailing.objects.filter(pk=mailing.pk).update(
            status=status, finished_at=timezone.now(), skipped_count=F("skipped_count") + skipped
        )
    return skipped
