"""What the ESP tells us after sending: reconciling deliveries, and progress counts.

ESP webhooks (authenticated and de-duplicated by the webhook view) call
`delivery_reconcile` with the delivery id from the message's metadata, or the ESP's
message id. Every transition is idempotent, so a repeated event changes nothing.
Engagement (opens, clicks) is only ever counted per mailing, never stored against a
person, and not at all when the campaign's tracking mode is off.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from subscriptions.models import Campaign, DailyStat, Delivery, Mailing
from subscriptions.services.stats import stat_increment


class DeliveryEvent(StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    OPENED = "opened"
    CLICKED = "clicked"


_ENGAGEMENT = {DeliveryEvent.OPENED: "opens_count", DeliveryEvent.CLICKED: "clicks_count"}
# Mailing counters that also feed the campaign's daily counts (which outlive every delivery).
_DAILY = {
    "sent_count": DailyStat.Metric.SENDS,
    "bounced_count": DailyStat.Metric.BOUNCES,
    "complained_count": DailyStat.Metric.COMPLAINTS,
}


@dataclass(frozen=True)
class Reconciled:
    delivery_id: int
    mailing_id: int
    subscriber_id: int
    changed: bool


@dataclass(frozen=True)
class Progress:
    status: str
    recipients: int
    sent: int
    failed: int
    skipped: int
    unknown: int
    remaining: int
    bounced: int
    complained: int


def mailing_progress(*, mailing_id: int) -> Progress:
    """One row read: the counters are kept on the mailing as each batch is marked."""
    row = Mailing.objects.values(
        "status", "recipients_count", "sent_count", "failed_count", "skipped_count", "unknown_count",
        "bounced_count", "complained_count",
    ).get(pk=mailing_id)  # fmt: skip
    done = row["sent_count"] + row["failed_count"] + row["skipped_count"] + row["unknown_count"]
    return Progress(
        status=row["status"],
        recipients=row["recipients_count"],
        sent=row["sent_count"],
        failed=row["failed_count"],
        skipped=row["skipped_count"],
        unknown=row["unknown_count"],
        remaining=max(row["recipients_count"] - done, 0),
        bounced=row["bounced_count"],
        complained=row["complained_count"],
    )


def _find(delivery_id: int | str | None, esp_message_id: str | None) -> Delivery | None:
    deliveries = Delivery.objects.select_for_update()
    if delivery_id not in (None, ""):
        try:
            found = deliveries.filter(pk=int(delivery_id)).first()
        except (TypeError, ValueError):
            return None
        # An id that names no row (mail sent before migration 0008 packed the keys)
        # may still be matched by the ESP's message id.
        if found is not None:
            return found
    if esp_message_id:
        # A batch call can give every recipient one message id (Mailgun does): such an id
        # names no one person, and acting on it could bounce or withdraw the wrong one.
        matches = list(deliveries.filter(esp_message_id=esp_message_id.strip("<>"))[:2])
        return matches[0] if len(matches) == 1 else None
    return None


def delivery_reconcile(
    *, delivery_id: int | str | None = None, esp_message_id: str | None = None, event: str
) -> Reconciled | None:
    """Apply one ESP event to its delivery and its mailing's counts; None if no delivery matches."""
    kind = DeliveryEvent(event)
    with transaction.atomic():
        delivery = _find(delivery_id, esp_message_id)
        if delivery is None:
            return None
        counters = _transition(delivery, kind)
        if kind in _ENGAGEMENT and _counts_engagement(delivery.mailing_id):
            counters[_ENGAGEMENT[kind]] = 1
        if counters:
            Mailing.objects.filter(pk=delivery.mailing_id).update(
                **{name: F(name) + change for name, change in counters.items()}
            )
            _count_daily(delivery.mailing_id, counters)
    return Reconciled(delivery.pk, delivery.mailing_id, delivery.subscriber_id, changed=bool(counters))


def _count_daily(mailing_id: int, counters: dict[str, int]) -> None:
    daily = {metric: counters[name] for name, metric in _DAILY.items() if counters.get(name, 0) > 0}
    if daily:
        campaign_id = Mailing.objects.values_list("campaign_id", flat=True).get(pk=mailing_id)
        for metric, count in daily.items():
            stat_increment(campaign_id=campaign_id, metric=metric, count=count)


def _counts_engagement(mailing_id: int) -> bool:
    mode = Campaign.objects.filter(mailings=mailing_id).values_list("tracking_mode", flat=True).first()
    return settings.TRACKING_ENABLED and mode in (Campaign.TrackingMode.AGGREGATE, Campaign.TrackingMode.INDIVIDUAL)


def _transition(delivery: Delivery, kind: DeliveryEvent) -> dict[str, int]:
    """Change the delivery as the event proves, returning the counter changes it implies."""
    counters: dict[str, int] = {}
    status, outcome = delivery.status, delivery.error
    # An event can overtake the worker: the ESP may report on a message before the
    # batch that sent it is marked. Such a delivery is still `sending`; the event
    # settles it here, and the worker's mark, which only touches `sending` rows, then
    # leaves it (and its counts) alone.
    undecided: dict[str, dict[str, int]] = {Delivery.Status.UNKNOWN: {"unknown_count": -1}, Delivery.Status.SENDING: {}}
    if status in undecided:
        if kind == DeliveryEvent.FAILED:
            counters = {**undecided[status], "failed_count": 1}
            status, outcome = Delivery.Status.FAILED, "failed at the ESP"
        else:
            # Any other news from the ESP about a delivery proves it was sent.
            counters = {**undecided[status], "sent_count": 1}
            status, outcome = Delivery.Status.SENT, ""
    if kind == DeliveryEvent.BOUNCED and outcome != "bounced" and status == Delivery.Status.SENT:
        counters["bounced_count"] = 1
        outcome = "bounced"
    if kind == DeliveryEvent.COMPLAINED and outcome != "complained" and status == Delivery.Status.SENT:
        counters["complained_count"] = 1
        outcome = "complained"
    if (status, outcome) != (delivery.status, delivery.error):
        delivery.status, delivery.error = status, outcome
        if status == Delivery.Status.SENT and delivery.sent_at is None:
            delivery.sent_at = timezone.now()
        delivery.save(update_fields=["status", "error", "sent_at"])
    return counters
