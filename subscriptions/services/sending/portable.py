"""The sending engine's statements for the demo's SQLite, through the ORM: fan-out,
claim, mark, completion and claim expiry, by the same rules as the PostgreSQL
statements of fan_out.py, claims.py and sweep.py, row by row (plenty for a demo's
few subscribers; SQLite takes one writer at a time, so a claim needs no row locks).
"""

from collections import Counter
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from subscriptions import selectors
from subscriptions.models import Delivery, Mailing, Subscriber
from subscriptions.models.mailings import delivery_id, mailing_delivery_ids
from subscriptions.services.sending.records import Claimed, Result


def fan_out(*, mailing: Mailing, topic_ids: list[int] | None) -> int:
    """One queued delivery per person of the audience; return how many the mailing has."""
    people = selectors.audience(campaign=mailing.campaign, topic_ids=topic_ids)
    ids = people.order_by("pk").values_list("pk", flat=True)
    Delivery.objects.bulk_create(
        [Delivery(id=delivery_id(mailing.pk, pk), mailing_id=mailing.pk, subscriber_id=pk) for pk in ids],
        ignore_conflicts=True,  # an earlier attempt's rows stay as they are
        batch_size=500,
    )
    return Delivery.objects.of_mailing(mailing.pk).count()


def claim(*, mailing: Mailing, topic_ids: list[int] | None, limit: int, after: int) -> list[Claimed]:
    """Claim up to `limit` queued deliveries past the key `after`, re-checking each person."""
    first, end = mailing_delivery_ids(mailing.pk)
    with transaction.atomic():
        queued = Delivery.objects.filter(
            pk__gt=max(after, first - 1), pk__lt=end, status=Delivery.Status.QUEUED
        ).order_by("pk")
        rows = list(queued.values_list("pk", "subscriber_id")[:limit])
        Delivery.objects.filter(pk__in=[pk for pk, _ in rows], status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
        )
    people = Subscriber.objects.in_bulk([subscriber_id for _, subscriber_id in rows])
    eligible = set(
        selectors.audience(campaign=mailing.campaign, topic_ids=topic_ids)
        .filter(pk__in=list(people))
        .values_list("pk", flat=True)
    )
    claimed = []
    for pk, subscriber_id in rows:
        person = people.get(subscriber_id)
        if person is None:  # erased since the fan-out: skipped, as the LEFT JOIN does
            claimed.append(Claimed(pk, subscriber_id, "", "", "", "", False))
            continue
        claimed.append(
            Claimed(
                pk, subscriber_id, person.email, person.first_name, person.link_key, person.email_hmac,
                subscriber_id in eligible,
            )
        )  # fmt: skip
    return claimed


def mark(results: dict[int, Result]) -> Counter[str]:
    """Record each outcome on a row still `sending`; count the statuses recorded."""
    now = timezone.now()
    counts: Counter[str] = Counter()
    for pk, result in results.items():
        changes: dict[str, object] = {
            "status": result.status, "esp_message_id": result.esp_message_id, "error": result.error[:200],
        }  # fmt: skip
        if result.status == Delivery.Status.SENT:
            changes["sent_at"] = now
        if result.status == Delivery.Status.QUEUED:
            changes["claimed_at"] = None
        if Delivery.objects.filter(pk=pk, status=Delivery.Status.SENDING).update(**changes):
            counts[result.status] += 1
    return counts


def complete_if_done(*, mailing_id: int) -> bool:
    first, end = mailing_delivery_ids(mailing_id)
    open_rows = Delivery.objects.filter(
        pk__gte=first, pk__lt=end, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    )
    return bool(
        Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.SENDING)
        .exclude(Exists(open_rows.filter(mailing_id=OuterRef("pk"))))
        .update(status=Mailing.Status.SENT, finished_at=timezone.now())
    )


def expire_claims(*, lease_seconds: int) -> Counter[int]:
    """Claims older than the lease become `unknown`; count them per mailing."""
    cutoff = timezone.now() - timedelta(seconds=lease_seconds)
    lost = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=cutoff)
    expired = Counter(lost.values_list("mailing_id", flat=True))
    lost.update(status=Delivery.Status.UNKNOWN, error="claim expired: the worker was lost mid-send")
    return expired
