"""Withdrawal and erasure: leaving stops processing at once, then leaves nothing behind.

Withdrawal happens in the request (the person is inactive before the response is
sent); erasure follows in a task on the `transactional` queue. What remains is a
Suppression row (a keyed hash, no address) and the aggregate counts.
"""

from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Delivery, Subscriber, Subscription, Suppression
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


_SUPPRESSION_REASON = {
    WithdrawalReason.COMPLAINT: Suppression.Reason.COMPLAINT,
    WithdrawalReason.HARD_BOUNCE: Suppression.Reason.HARD_BOUNCE,
    WithdrawalReason.ERASURE_REQUEST: Suppression.Reason.ERASED,
    WithdrawalReason.STAFF: Suppression.Reason.ERASED,
    WithdrawalReason.LAPSED: Suppression.Reason.LAPSED,
    WithdrawalReason.CAMPAIGN_ENDED: Suppression.Reason.CAMPAIGN_ENDED,
    WithdrawalReason.RETENTION_LIMIT: Suppression.Reason.LAPSED,
}

_STATUS_AFTER = {
    WithdrawalReason.HARD_BOUNCE: Subscriber.Status.BOUNCED,
    WithdrawalReason.LAPSED: Subscriber.Status.LAPSED,
    WithdrawalReason.RETENTION_LIMIT: Subscriber.Status.LAPSED,
}

_STILL_RECEIVING = (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE)
# Erasures a rule makes due whatever the person's status: their callers select the people.
# Every other reason follows a withdrawal, and lapses if the person signed up again since.
_DUE_WHATEVER_STATUS = (WithdrawalReason.CAMPAIGN_ENDED, WithdrawalReason.RETENTION_LIMIT, WithdrawalReason.LAPSED)


def suppression_reason(reason: WithdrawalReason) -> Suppression.Reason:
    """What the suppression entry left by an erasure for this reason says."""
    return _SUPPRESSION_REASON.get(reason, Suppression.Reason.WITHDRAWN)


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
        if subscriber is None or subscriber.status not in _STILL_RECEIVING:
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


def subscriber_erase(*, subscriber_id: int, reason: WithdrawalReason) -> bool:
    """Delete everything held about one person, leaving a suppression entry and counts.

    A person on legal hold is kept (marked as due for erasure) until the hold lifts.
    Returns True when the data was erased now; erasing someone already gone is a no-op,
    and so is erasing, after a withdrawal, someone who has signed up again since (the
    task that does it may run long after it was queued).
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None:
            return False
        if subscriber.status in _STILL_RECEIVING and reason not in _DUE_WHATEVER_STATUS:
            return False
        if subscriber.legal_hold:
            if subscriber.erasure_due_at is None:
                subscriber.erasure_due_at = timezone.now()
                subscriber.save(update_fields=["erasure_due_at"])
            return False
        Suppression.objects.update_or_create(
            campaign_id=subscriber.campaign_id,
            email_hmac=email_hmac(subscriber.email),
            defaults={"reason": suppression_reason(reason)},
        )
        # Deliveries are found by key (no per-person index to cascade through); Django
        # cascades to consent events and subscriptions with one DELETE each (none of
        # them has dependents of its own, so no rows are loaded).
        Delivery.objects.of_people(campaign_id=subscriber.campaign_id, subscriber_ids=[subscriber.pk]).delete()
        Subscriber.objects.filter(pk=subscriber.pk).delete()
        stat_increment(campaign_id=subscriber.campaign_id, metric="erasures", reason=str(reason))
    return True
