"""Withdrawal: leaving stops all processing for a person at once, and queues their erasure.

It happens in the request (the person is inactive before the response is sent); the
erasure (services/erasure) follows in a task on the `transactional` queue.
"""

from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from subscriptions.models import ConsentEvent, Subscriber, Subscription
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.stats import stat_increment


class WithdrawalReason(StrEnum):
    ONE_CLICK = "one_click"
    UNSUBSCRIBE_PAGE = "unsubscribe_page"
    PREFERENCES = "preferences"
    INBOUND_EMAIL = "inbound_email"
    ERASURE_REQUEST = "erasure_request"
    COMPLAINT = "complaint"
    HARD_BOUNCE = "hard_bounce"
    ESP_UNSUBSCRIBE = "esp_unsubscribe"
    STAFF = "staff"
    LAPSED = "lapsed"
    CAMPAIGN_ENDED = "campaign_ended"
    RETENTION_LIMIT = "retention_limit"


_STATUS_AFTER = {
    WithdrawalReason.HARD_BOUNCE: Subscriber.Status.BOUNCED,
    WithdrawalReason.LAPSED: Subscriber.Status.LAPSED,
    WithdrawalReason.RETENTION_LIMIT: Subscriber.Status.LAPSED,
}

# The statuses of someone who has not withdrawn.
STILL_RECEIVING = (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE)


def subscriber_withdraw(
    *, subscriber_id: int, reason: WithdrawalReason, source: ConsentEvent.Source, erase: bool = True
) -> bool:
    """Stop all processing for one person now, and queue their erasure.

    Returns False (and changes nothing) when the person had already withdrawn or no
    longer exists, so concurrent or repeated requests produce one withdrawal.
    """
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None or subscriber.status not in STILL_RECEIVING:
            return False
        was_active = subscriber.status == Subscriber.Status.ACTIVE
        subscriber.status = _STATUS_AFTER.get(reason, Subscriber.Status.UNSUBSCRIBED)
        subscriber.withdrawn_at = now
        subscriber.save(update_fields=["status", "withdrawn_at"])
        open_subscriptions = Subscription.objects.filter(subscriber=subscriber, ended_at__isnull=True)
        topic_ids = list(open_subscriptions.values_list("topic_id", flat=True))
        open_subscriptions.update(ended_at=now, ended_reason=str(reason))
        ConsentEvent.objects.create(
            subscriber=subscriber, kind=ConsentEvent.Kind.WITHDRAWN, source=source,
            topic_ids=topic_ids, details={"reason": str(reason)},
        )  # fmt: skip
        if was_active:
            stat_increment(campaign_id=subscriber.campaign_id, metric="withdrawals", reason=str(reason))
        if erase:
            enqueue_on_commit("subscriptions.erase_subscriber", subscriber.pk, str(reason))
    return True
