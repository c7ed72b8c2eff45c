"""Erasure: what deleting a person removes, what stays behind, and the legal hold.

`personal_data_delete` is the one list of a person's rows and the order they go in.
Around it: `subscriber_erase` for one person (after a withdrawal, by staff, when a
hold lifts), `subscribers_erase` for everyone a query selects, batch by batch
(campaign end, lapse, the retention limit, missed withdrawals). What remains of a
person is an aggregate count and, unless the campaign has ended, a suppression entry
(a keyed hash, no address). Someone on legal hold is withdrawn and marked due instead,
and erased by `held_erasure_complete` once the hold lifts. Pending expiry
(services/retention) and an email change (services/preferences) delete through
`personal_data_delete` too.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import Campaign, ConsentEvent, DailyStat, Delivery, Subscriber, Subscription, Suppression
from subscriptions.services.stats import stat_increment
from subscriptions.services.withdrawal import STILL_RECEIVING, WithdrawalReason, subscriber_withdraw

# People per erasure batch: each batch is one transaction of a fraction of a second,
# so nothing else waits long on it, and few enough round trips that a million
# people take well under a minute.
ERASE_BATCH_SIZE = 20_000

_SUPPRESSION_REASON = {
    WithdrawalReason.COMPLAINT: Suppression.Reason.COMPLAINT,
    WithdrawalReason.HARD_BOUNCE: Suppression.Reason.HARD_BOUNCE,
    WithdrawalReason.ERASURE_REQUEST: Suppression.Reason.ERASED,
    WithdrawalReason.STAFF: Suppression.Reason.ERASED,
    WithdrawalReason.LAPSED: Suppression.Reason.LAPSED,
    WithdrawalReason.CAMPAIGN_ENDED: Suppression.Reason.CAMPAIGN_ENDED,
    WithdrawalReason.RETENTION_LIMIT: Suppression.Reason.LAPSED,
}
# Erasures a rule makes due whatever the person's status: their callers select the people.
# Every other reason follows a withdrawal, and lapses if the person signed up again since.
_DUE_WHATEVER_STATUS = (WithdrawalReason.CAMPAIGN_ENDED, WithdrawalReason.RETENTION_LIMIT, WithdrawalReason.LAPSED)


@dataclass(frozen=True)
class Erasure:
    erased: int = 0
    # Kept for a legal hold: processing stopped, erased when the hold is lifted.
    held: int = 0


def suppression_reason(reason: WithdrawalReason) -> Suppression.Reason:
    """What the suppression entry left by an erasure for this reason says."""
    return _SUPPRESSION_REASON.get(reason, Suppression.Reason.WITHDRAWN)


# Everything that points at a person goes first (deliveries, by key, before these),
# the people last.
_DELETE = [
    "DELETE FROM subscriptions_consentevent WHERE subscriber_id = ANY(%(ids)s)",
    "DELETE FROM subscriptions_subscription WHERE subscriber_id = ANY(%(ids)s)",
    "DELETE FROM subscriptions_subscriber WHERE id = ANY(%(ids)s)",
]


def personal_data_delete(*, campaign_id: int, subscriber_ids: list[int]) -> int:
    """Delete every row held about these people of one campaign: their deliveries,
    consent events and subscriptions, then the people. Returns how many people went.

    Writes nothing else (no suppression, no count: those are the caller's). Call in a
    transaction, with the people's rows locked.
    """
    if not subscriber_ids:
        return 0
    # No database-level foreign key would remove these: only this statement does.
    Delivery.objects.of_people(campaign_id=campaign_id, subscriber_ids=subscriber_ids)._raw_delete(connection.alias)
    if connection.vendor != "postgresql":  # the SQLite demo
        ConsentEvent.objects.filter(subscriber_id__in=subscriber_ids)._raw_delete(connection.alias)
        Subscription.objects.filter(subscriber_id__in=subscriber_ids)._raw_delete(connection.alias)
        return int(Subscriber.objects.filter(pk__in=subscriber_ids)._raw_delete(connection.alias))
    with connection.cursor() as cursor:
        for statement in _DELETE:
            cursor.execute(statement, {"ids": subscriber_ids})
        return int(cursor.rowcount)


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
        if subscriber.status in STILL_RECEIVING and reason not in _DUE_WHATEVER_STATUS:
            return False
        if subscriber.legal_hold:
            if subscriber.erasure_due_at is None:
                subscriber.erasure_due_at = timezone.now()
                subscriber.save(update_fields=["erasure_due_at"])
            return False
        # One person's entry takes this erasure's reason even where one was there
        # already; the batches below leave an existing entry as it is.
        Suppression.objects.update_or_create(
            campaign_id=subscriber.campaign_id,
            email_hmac=email_hmac(subscriber.email),
            defaults={"reason": suppression_reason(reason)},
        )
        personal_data_delete(campaign_id=subscriber.campaign_id, subscriber_ids=[subscriber.pk])
        stat_increment(campaign_id=subscriber.campaign_id, metric="erasures", reason=str(reason))
    return True


def subscribers_erase(
    *,
    candidates: QuerySet[Subscriber],
    campaign_id: int,
    reason: WithdrawalReason,
    now: datetime.datetime | None = None,
    suppress: bool = True,
) -> Erasure:
    """Erase everyone `candidates` selects in one campaign, batch by batch.

    What remains of each person is the erasure count and, with `suppress`, a
    suppression entry (campaign end passes False: docs/adr/0006-campaign-end-deletes-suppressions.md).
    People on legal hold are withdrawn (nothing more is sent) and marked due for
    erasure, but kept whole until the hold is lifted. Running it again finds nobody new.
    """
    now = now or timezone.now()
    candidates = candidates.filter(campaign_id=campaign_id)
    erased, after = 0, 0
    # Keyset pagination: each batch starts past the last id, never rescanning the
    # dead rows the earlier batches left behind.
    while batch := _erase_next_batch(candidates, campaign_id, after, reason, now, suppress):
        erased += len(batch)
        after = batch[-1]
    held = _stop_held(candidates.filter(legal_hold=True), reason)
    return Erasure(erased=erased, held=held)


def _erase_next_batch(
    candidates: QuerySet[Subscriber],
    campaign_id: int,
    after: int,
    reason: WithdrawalReason,
    now: datetime.datetime,
    suppress: bool,
) -> list[int]:
    with transaction.atomic():
        # Locking re-checks the filter against concurrent changes: someone placed on
        # legal hold a moment ago drops out of the batch.
        ids = list(
            candidates.filter(pk__gt=after, legal_hold=False)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)[:ERASE_BATCH_SIZE]
        )
        if ids:
            _erase_ids(campaign_id, ids, reason, now, suppress)
    return ids


# The keyed hash was stored with the address, so suppressions are copied in SQL
# without loading anyone. An unconfirmed sign-up never consented: no entry for it.
_SUPPRESS = """
INSERT INTO subscriptions_suppression (campaign_id, email_hmac, reason, created_at)
SELECT campaign_id, email_hmac, %(reason)s, %(now)s FROM subscriptions_subscriber
WHERE id = ANY(%(ids)s) AND email_hmac <> '' AND status <> 'pending'
ON CONFLICT (campaign_id, email_hmac) DO NOTHING
"""
_UNHASHED = """
SELECT id FROM subscriptions_subscriber WHERE id = ANY(%(ids)s) AND email_hmac = '' AND status <> 'pending'
"""


def _erase_ids(
    campaign_id: int, ids: list[int], reason: WithdrawalReason, now: datetime.datetime, suppress: bool
) -> None:
    if connection.vendor != "postgresql":
        # The embedded demo (SQLite) erases its few people one at a time.
        for pk in ids:
            subscriber_erase(subscriber_id=pk, reason=reason)
        return
    if suppress:
        params: dict[str, Any] = {"ids": ids, "reason": str(suppression_reason(reason)), "now": now}
        with connection.cursor() as cursor:
            cursor.execute(_SUPPRESS, params)
            cursor.execute(_UNHASHED, params)
            _suppress_unhashed([row[0] for row in cursor.fetchall()], reason)
    personal_data_delete(campaign_id=campaign_id, subscriber_ids=ids)
    stat_increment(
        campaign_id=campaign_id, metric=DailyStat.Metric.ERASURES, count=len(ids), reason=str(reason),
        day=timezone.localdate(now),
    )  # fmt: skip


def _suppress_unhashed(ids: list[int], reason: WithdrawalReason) -> None:
    """Rows written without `email_hmac` (QuerySet.update, bulk_create) are hashed here."""
    rows = Subscriber.objects.filter(pk__in=ids).values_list("campaign_id", "email")
    Suppression.objects.bulk_create(
        [Suppression(campaign_id=c, email_hmac=email_hmac(e), reason=suppression_reason(reason)) for c, e in rows],
        ignore_conflicts=True,
    )


def _stop_held(held: QuerySet[Subscriber], reason: WithdrawalReason) -> int:
    """Stop processing for people on legal hold and mark them due; they are few."""
    ids = list(held.values_list("pk", flat=True))
    for pk in ids:
        subscriber_withdraw(subscriber_id=pk, reason=reason, source=ConsentEvent.Source.SYSTEM, erase=False)
        subscriber_erase(subscriber_id=pk, reason=reason)
    return len(ids)


def ended_campaign_suppressions_delete(*, campaign_id: int) -> None:
    """Delete the entries earlier withdrawals left in an ended campaign, but those of
    people still held, which go when they do (docs/adr/0006-campaign-end-deletes-suppressions.md)."""
    held = Subscriber.objects.filter(campaign_id=campaign_id).values("email_hmac")
    Suppression.objects.filter(campaign_id=campaign_id).exclude(email_hmac__in=held).delete()


def _held_erasure_reason(subscriber: Subscriber) -> WithdrawalReason:
    """Why a person kept for a legal hold was due to be erased, from their own record."""
    withdrawn = subscriber.consent_events.filter(kind=ConsentEvent.Kind.WITHDRAWN).order_by("-created_at", "-pk")
    recorded = withdrawn.values_list("details__reason", flat=True).first()
    if isinstance(recorded, str) and recorded in WithdrawalReason:
        return WithdrawalReason(recorded)
    if subscriber.campaign.status != Campaign.Status.ACTIVE:
        return WithdrawalReason.CAMPAIGN_ENDED
    return WithdrawalReason.STAFF


def held_erasure_complete(*, subscriber: Subscriber) -> WithdrawalReason | None:
    """Erase someone whose erasure waited on a legal hold; returns why they were due, or
    None when nothing was erased (still held, or already gone)."""
    reason = _held_erasure_reason(subscriber)
    if not subscriber_erase(subscriber_id=subscriber.pk, reason=reason):
        return None
    # Whatever made them due (their own "delete my data", say), a campaign that has
    # ended keeps no address hash: as for everyone else at its end, none outlives it.
    ended = not Campaign.objects.filter(pk=subscriber.campaign_id, status=Campaign.Status.ACTIVE).exists()
    if reason == WithdrawalReason.CAMPAIGN_ENDED or ended:
        Suppression.objects.filter(campaign_id=subscriber.campaign_id, email_hmac=subscriber.email_hmac).delete()
    return reason


def held_erasures_complete() -> int:
    """Erase the people whose erasure waited on a legal hold that is no longer there."""
    due = Subscriber.objects.select_related("campaign").filter(erasure_due_at__isnull=False, legal_hold=False)
    return sum(held_erasure_complete(subscriber=subscriber) is not None for subscriber in due)
