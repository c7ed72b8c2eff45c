"""Retention: personal data lives only as long as consent does.

The sweeps Celery beat runs on the `bulk` queue: pending sign-ups nobody confirmed,
missed erasures after withdrawal, the retention limit, old delivery rows, stale
email-change addresses, and the daily sweep that runs them. Each works set-based, in
batches that commit on their own, so a crash part-way loses nothing: the next run
carries on where it stopped. The erasing itself is services/erasure's.
"""

import datetime

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from subscriptions.models import Campaign, ConsentEvent, DailyStat, Delivery, Mailing, Subscriber
from subscriptions.services.erasure import held_erasures_complete, personal_data_delete, subscribers_erase
from subscriptions.services.preference_emails import EMAIL_CHANGE_VALID_DAYS
from subscriptions.services.preferences import EMAIL_CHANGE_REQUESTED, EMAIL_CHANGED
from subscriptions.services.stats import stat_increment
from subscriptions.services.withdrawal import WithdrawalReason

EXPIRY_BATCH_SIZE = 5000
DELIVERY_PRUNE_BATCH_SIZE = 50_000


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


_recent_requests = ConsentEvent.objects.filter(subscriber_id=OuterRef("pk"), kind=ConsentEvent.Kind.REQUESTED)


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
            # A sign-up sent again mails a fresh link valid for the full expiry: the
            # clock runs from the newest request, not the first.
            .exclude(Exists(_recent_requests.filter(created_at__gte=cutoff)))
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:EXPIRY_BATCH_SIZE]
        )
        if not ids:
            return 0
        # No suppression: an unconfirmed address never consented.
        deleted = personal_data_delete(campaign_id=campaign_id, subscriber_ids=ids)
        stat_increment(
            campaign_id=campaign_id, metric=DailyStat.Metric.EXPIRED, count=deleted, day=timezone.localdate(now)
        )
    return deleted


# The old address an email change must tell is kept only until the notice goes; one
# whose notice never went is forgotten after this, whatever became of the notice.
EMAIL_CHANGED_NOTICE_KEPT = datetime.timedelta(days=1)


def email_change_addresses_forget(*, now: datetime.datetime | None = None) -> int:
    """Blank the addresses an email change left in consent events once they are no use.

    The new address of a request whose link has expired (it may be a stranger's), and
    the old address of a change whose notice never went. Returns how many were blanked.
    """
    now = now or timezone.now()
    requests = ConsentEvent.objects.filter(
        kind=ConsentEvent.Kind.CHANGED,
        details__change=EMAIL_CHANGE_REQUESTED,
        details__has_key="new_email",
        created_at__lt=now - datetime.timedelta(days=EMAIL_CHANGE_VALID_DAYS),
    )
    forgotten = requests.update(details={"change": EMAIL_CHANGE_REQUESTED, "expired": True})
    notices = ConsentEvent.objects.filter(
        kind=ConsentEvent.Kind.CHANGED,
        details__change=EMAIL_CHANGED,
        details__has_key="notify",
        created_at__lt=now - EMAIL_CHANGED_NOTICE_KEPT,
    )
    if connection.vendor == "postgresql":
        return forgotten + notices.update(details=RawSQL("details - 'notify'", []))
    for event in notices:
        event.details.pop("notify", None)
        event.save(update_fields=["details"])
        forgotten += 1
    return forgotten


# Erasure normally follows withdrawal within seconds (a task queued on commit). A
# person still here after this long was missed: a lost task, a crash, a refused
# acknowledgement. An unsubscribe by email waits longer, for its acknowledgement's
# retries (about a quarter of an hour in all), which need the address.
WITHDRAWN_ERASE_AFTER = datetime.timedelta(minutes=10)
INBOUND_ERASE_AFTER = datetime.timedelta(hours=1)
_WITHDRAWN = (Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED, Subscriber.Status.LAPSED)
# For someone whose withdrawal event names no reason we know.
_REASON_BY_STATUS = {
    Subscriber.Status.UNSUBSCRIBED: WithdrawalReason.STAFF,
    Subscriber.Status.BOUNCED: WithdrawalReason.HARD_BOUNCE,
    Subscriber.Status.LAPSED: WithdrawalReason.LAPSED,
}


def withdrawn_erase(*, now: datetime.datetime | None = None) -> int:
    """Erase everyone who withdrew but whose erasure never happened.

    Set-based, by the reason recorded at withdrawal (it decides the suppression
    entry). People on legal hold, or whose erasure already waits on one, are left to
    `erasure.held_erasures_complete`.
    """
    now = now or timezone.now()
    # An ended campaign's people are erased by campaign end, which leaves no suppression.
    withdrawn = Subscriber.objects.filter(
        campaign__status=Campaign.Status.ACTIVE,
        status__in=_WITHDRAWN,
        legal_hold=False,
        erasure_due_at__isnull=True,
        withdrawn_at__isnull=False,
    )
    recorded = ConsentEvent.objects.filter(subscriber_id=OuterRef("pk"), kind=ConsentEvent.Kind.WITHDRAWN)
    groups: list[tuple[WithdrawalReason, QuerySet[Subscriber]]] = []
    for reason in WithdrawalReason:
        if reason == WithdrawalReason.CAMPAIGN_ENDED:
            continue  # campaign end erases its own, and leaves no suppression behind
        after = INBOUND_ERASE_AFTER if reason == WithdrawalReason.INBOUND_EMAIL else WITHDRAWN_ERASE_AFTER
        due = withdrawn.filter(withdrawn_at__lt=now - after)
        groups.append((reason, due.filter(Exists(recorded.filter(details__reason=str(reason))))))
    unrecorded = withdrawn.filter(withdrawn_at__lt=now - WITHDRAWN_ERASE_AFTER).exclude(
        Exists(recorded.filter(details__reason__in=[str(reason) for reason in WithdrawalReason]))
    )
    groups += [(reason, unrecorded.filter(status=status)) for status, reason in _REASON_BY_STATUS.items()]
    erased = 0
    for reason, candidates in groups:
        for campaign_id in set(candidates.values_list("campaign_id", flat=True)):
            erased += subscribers_erase(candidates=candidates, campaign_id=campaign_id, reason=reason, now=now).erased
    return erased


def deliveries_prune(*, now: datetime.datetime | None = None) -> int:
    """Delete per-person delivery rows of mailings older than their campaign keeps them.

    A mailing's counts live on the Mailing row and stay. Age is taken from when the
    mailing finished, so a mailing still sending keeps every row.
    """
    now = now or timezone.now()
    pruned = 0
    for campaign_id, days in Campaign.objects.values_list("pk", "delivery_retention_days"):
        old = (
            Mailing.objects.filter(campaign_id=campaign_id, status__in=[Mailing.Status.SENT, Mailing.Status.CANCELLED])
            .alias(done_at=Coalesce("finished_at", "created_at"))
            .filter(done_at__lt=now - datetime.timedelta(days=days))
        )
        # A mailing already pruned costs one probe of its key range.
        for mailing_id in old.values_list("pk", flat=True):
            while deleted := _prune_batch(mailing_id):
                pruned += deleted
    return pruned


def _prune_batch(mailing_id: int) -> int:
    batch = Delivery.objects.of_mailing(mailing_id).values("pk")[:DELIVERY_PRUNE_BATCH_SIZE]
    return Delivery.objects.filter(pk__in=batch)._raw_delete(Delivery.objects.db)


def retention_limit_erase(*, now: datetime.datetime | None = None) -> int:
    """Erase people whose last confirmation is older than their campaign's retention limit."""
    now = now or timezone.now()
    erased = 0
    limits = Campaign.objects.filter(max_retention_days__isnull=False).values_list("pk", "max_retention_days")
    for campaign_id, days in limits:
        cutoff = now - datetime.timedelta(days=days or 0)
        aged = Subscriber.objects.exclude(status=Subscriber.Status.PENDING).filter(
            Q(last_confirmed_at__lt=cutoff)
            | Q(last_confirmed_at__isnull=True, confirmed_at__lt=cutoff)
            | Q(last_confirmed_at__isnull=True, confirmed_at__isnull=True, created_at__lt=cutoff)
        )
        outcome = subscribers_erase(
            candidates=aged, campaign_id=campaign_id, reason=WithdrawalReason.RETENTION_LIMIT, now=now
        )
        erased += outcome.erased
    return erased


def retention_sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """The daily sweep: old delivery rows, the retention limit, erasures a hold delayed,
    and (again, should the quarter-hourly runs have stopped) missed erasures and stale
    email-change addresses."""
    now = now or timezone.now()
    return {
        "deliveries_pruned": deliveries_prune(now=now),
        "retention_limit_erased": retention_limit_erase(now=now),
        "held_erasures_completed": held_erasures_complete(),
        "withdrawn_erased": withdrawn_erase(now=now),
        "email_change_addresses_forgotten": email_change_addresses_forget(now=now),
    }
