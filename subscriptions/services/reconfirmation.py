"""Reconfirmation: where a campaign sets a period, consent is asked for again.

Someone whose last confirmation is older than the campaign's `reconfirm_after_days`
gets an email with a "keep me subscribed" link; halfway through the grace period,
if they have not answered, a reminder; once the grace period is over, they lapse
and are erased. Answering writes a ConsentEvent "reconfirmed" and starts the
period again.

The emails go one person at a time on the `transactional` queue (a 12-month period
spreads a campaign's list over the year, so each day's share is small). The sweep
only finds who is due and queues a task per person; the task re-checks under a row
lock and records the time it actually mailed, so a lost task is simply queued
again on the next run and a duplicate one sends nothing.

Restricted people (Art. 18) are neither asked nor lapsed: they are kept, and not
processed, until the restriction lifts.
"""

import datetime
from dataclasses import dataclass
from enum import StrEnum
from smtplib import SMTPRecipientsRefused

from anymail.exceptions import AnymailRecipientsRefused
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from subscriptions import selectors
from subscriptions.mail import transactional
from subscriptions.models import Campaign, ConsentEvent, DailyStat, Subscriber
from subscriptions.services import erasure
from subscriptions.services.enqueue import enqueue
from subscriptions.services.stats import stat_increment
from subscriptions.services.withdrawal import WithdrawalReason

# At most this many emails of each kind are queued per campaign per run; the hourly
# runs take up the rest, so a first run on an old list never floods the queue.
QUEUE_LIMIT_PER_RUN = 5000


class ReconfirmOutcome(StrEnum):
    KEPT = "kept"  # the answer was recorded
    ALREADY = "already"  # nothing was being asked: this link was used before
    GONE = "gone"  # no longer subscribed (lapsed, unsubscribed, erased) or the campaign ended


@dataclass(frozen=True)
class ReconfirmationRun:
    asked: int = 0  # emails queued
    reminded: int = 0  # reminders queued
    lapsed: int = 0


def _ask_after(campaign: Campaign) -> datetime.timedelta:
    return datetime.timedelta(days=campaign.reconfirm_after_days or 0)


def _grace(campaign: Campaign) -> datetime.timedelta:
    return datetime.timedelta(days=campaign.reconfirm_grace_days)


def _remind_after(campaign: Campaign) -> datetime.timedelta:
    return _grace(campaign) / 2


def _receiving(campaign: Campaign) -> QuerySet[Subscriber]:
    return Subscriber.objects.filter(campaign=campaign, status=Subscriber.Status.ACTIVE, restricted=False)


def _due_to_ask(campaign: Campaign, now: datetime.datetime) -> QuerySet[Subscriber]:
    cutoff = now - _ask_after(campaign)
    return _receiving(campaign).filter(
        Q(last_confirmed_at__lt=cutoff) | Q(last_confirmed_at__isnull=True, created_at__lt=cutoff),
        reconfirm_requested_at__isnull=True,
    )


def _due_to_remind(campaign: Campaign, now: datetime.datetime) -> QuerySet[Subscriber]:
    return _receiving(campaign).filter(
        reconfirm_requested_at__lte=now - _remind_after(campaign),
        reconfirm_requested_at__gt=now - _grace(campaign),
        reconfirm_reminded_at__isnull=True,
    )


def _unanswered(campaign: Campaign, now: datetime.datetime) -> QuerySet[Subscriber]:
    return _receiving(campaign).filter(reconfirm_requested_at__lte=now - _grace(campaign))


def reconfirmation_sweep(*, now: datetime.datetime | None = None) -> ReconfirmationRun:
    """Ask, remind and lapse, for every running campaign with a reconfirmation period."""
    now = now or timezone.now()
    asked = reminded = lapsed = 0
    campaigns = Campaign.objects.filter(status=Campaign.Status.ACTIVE, reconfirm_after_days__isnull=False)
    for campaign in campaigns:
        for pk in _due_to_ask(campaign, now).order_by("pk").values_list("pk", flat=True)[:QUEUE_LIMIT_PER_RUN]:
            enqueue("subscriptions.send_reconfirmation", pk, False)
            asked += 1
        for pk in _due_to_remind(campaign, now).order_by("pk").values_list("pk", flat=True)[:QUEUE_LIMIT_PER_RUN]:
            enqueue("subscriptions.send_reconfirmation", pk, True)
            reminded += 1
        lapsed += subscribers_lapse(campaign=campaign, now=now)
    return ReconfirmationRun(asked=asked, reminded=reminded, lapsed=lapsed)


def subscribers_lapse(*, campaign: Campaign, now: datetime.datetime | None = None) -> int:
    """Erase those who did not answer within the grace period (those on legal hold are kept)."""
    now = now or timezone.now()
    outcome = erasure.subscribers_erase(
        candidates=_unanswered(campaign, now), campaign_id=campaign.pk, reason=WithdrawalReason.LAPSED, now=now
    )
    lapsed = outcome.erased + outcome.held
    stat_increment(campaign_id=campaign.pk, metric=DailyStat.Metric.LAPSES, count=lapsed, day=timezone.localdate(now))
    return lapsed


def reconfirmation_send(*, subscriber_id: int, reminder: bool, now: datetime.datetime | None = None) -> bool:
    """Mail one person their reconfirmation request (or its reminder), once.

    Returns False, sending nothing, when it is no longer due: answered, withdrawn,
    restricted, already mailed, or the campaign ended or dropped its period.
    """
    now = now or timezone.now()
    with transaction.atomic():
        subscriber = selectors.subscriber_locked(subscriber_id=subscriber_id)
        if subscriber is None or not _still_due(subscriber, reminder, now):
            return False
        if reminder:
            subscriber.reconfirm_reminded_at = now
        else:
            subscriber.reconfirm_requested_at = now
        try:
            _request_send(subscriber, reminder)
        except (AnymailRecipientsRefused, SMTPRecipientsRefused):
            # The address will never take it. Recording the request anyway starts the
            # grace clock, so the person lapses and is erased instead of being asked
            # (and kept) for ever.
            subscriber.save(update_fields=["reconfirm_reminded_at" if reminder else "reconfirm_requested_at"])
            return False
        subscriber.save(update_fields=["reconfirm_reminded_at" if reminder else "reconfirm_requested_at"])
    return True


def _still_due(subscriber: Subscriber, reminder: bool, now: datetime.datetime) -> bool:
    campaign = subscriber.campaign
    if not (campaign.is_active and campaign.reconfirm_after_days):
        return False
    due = _due_to_remind(campaign, now) if reminder else _due_to_ask(campaign, now)
    return due.filter(pk=subscriber.pk).exists()


def _request_send(subscriber: Subscriber, reminder: bool) -> None:
    campaign = subscriber.campaign
    requested_at = subscriber.reconfirm_requested_at or timezone.now()
    transactional.reconfirmation_request(
        subscriber=subscriber,
        reminder=reminder,
        lapse_on=timezone.localdate(requested_at + _grace(campaign)),
        privacy_notice=selectors.privacy_notice_current(campaign=campaign),
    )


def subscriber_reconfirm(*, subscriber_id: int, now: datetime.datetime | None = None) -> ReconfirmOutcome:
    """Record a "keep me subscribed": consent is renewed and the period starts again."""
    now = now or timezone.now()
    with transaction.atomic():
        subscriber = selectors.subscriber_locked(subscriber_id=subscriber_id)
        if subscriber is None or not subscriber.is_active or not subscriber.campaign.is_active:
            return ReconfirmOutcome.GONE
        if subscriber.reconfirm_requested_at is None:
            return ReconfirmOutcome.ALREADY
        subscriber.last_confirmed_at = now
        subscriber.reconfirm_requested_at = subscriber.reconfirm_reminded_at = None
        subscriber.save(update_fields=["last_confirmed_at", "reconfirm_requested_at", "reconfirm_reminded_at"])
        ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.RECONFIRMED,
            source=ConsentEvent.Source.EMAIL,
            # The notice they were shown on the page where they answered.
            privacy_notice=selectors.privacy_notice_current(campaign=subscriber.campaign),
            topic_ids=sorted(subscriber.subscriptions.filter(ended_at__isnull=True).values_list("topic_id", flat=True)),
        )
        stat_increment(
            campaign_id=subscriber.campaign_id, metric=DailyStat.Metric.RECONFIRMATIONS, day=timezone.localdate(now)
        )
    return ReconfirmOutcome.KEPT
