"""The end of a campaign: nothing more is sent, and everyone it holds is erased.

The campaign's `ends_on` is its last day. On the first hourly run after it,
`campaign_end` marks the campaign ended (sign-ups, confirmations and sending stop at
once), cancels its live mailings, erases every subscriber through services/erasure,
keeps the aggregate counts, deletes the campaign's suppression entries and marks it
erased. People on legal hold are withdrawn and kept until the hold lifts. Why no
suppression entries: docs/adr/0006-campaign-end-deletes-suppressions.md.

A PostgreSQL advisory lock keyed by the campaign keeps two runs from interleaving,
and every step is guarded by state, so a second run (or one after a crash) only
finishes what is left. Also here: the preview staff see, the check on an end date
already passed, the audit of settings changes and the draft end notice.
"""

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Q
from django.utils import dateformat, timezone

from subscriptions.audit import Actor, audit_record, recorded_actor
from subscriptions.models import Campaign, Mailing, Subscriber
from subscriptions.services import erasure, mailings
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.withdrawal import WithdrawalReason

# First half of the two-part advisory lock key; the campaign id is the second.
CAMPAIGN_END_LOCK = 0x74640001


@dataclass(frozen=True)
class CampaignEnd:
    campaign_id: int
    erased: int = 0
    held: int = 0
    mailings_cancelled: int = 0
    # Another run holds the campaign's lock: this one changed nothing.
    busy: bool = False
    # The campaign is marked erased: nobody is left but people on legal hold.
    complete: bool = False


@dataclass(frozen=True)
class EndPreview:
    """What the end of a campaign will erase, for staff to see in advance."""

    ends_on: datetime.date | None
    erase_on: datetime.date | None  # the day the hourly run erases them
    to_erase: int
    held: int  # on legal hold: kept until the hold lifts
    erased: bool  # already done


def _due(today: datetime.date) -> Q:
    # Once ended, a campaign is finished off whatever its date says now: its people
    # may already be partly erased, and it can never take sign-ups again.
    return Q(status=Campaign.Status.ENDED) | Q(status=Campaign.Status.ACTIVE, ends_on__lt=today)


def campaign_end_due(*, campaign: Campaign, today: datetime.date | None = None) -> bool:
    return Campaign.objects.filter(_due(today or timezone.localdate()), pk=campaign.pk).exists()


def campaigns_end_due(*, today: datetime.date | None = None) -> list[CampaignEnd]:
    """End every campaign whose last day has passed (the hourly beat calls this)."""
    today = today or timezone.localdate()
    due = Campaign.objects.filter(_due(today)).order_by("pk").values_list("pk", flat=True)
    return [campaign_end(campaign_id=pk, today=today) for pk in due]


def campaign_end(*, campaign_id: int, today: datetime.date | None = None) -> CampaignEnd:
    """Stop everything for a campaign whose end date has passed, and erase its subscribers."""
    today = today or timezone.localdate()
    with _advisory_lock(CAMPAIGN_END_LOCK, campaign_id) as acquired:
        if not acquired:
            return CampaignEnd(campaign_id, busy=True)
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None or not campaign_end_due(campaign=campaign, today=today):
            return CampaignEnd(campaign_id)
        cancelled = _stop_sending(campaign)
        outcome = erasure.subscribers_erase(
            candidates=Subscriber.objects.all(),
            campaign_id=campaign_id,
            reason=WithdrawalReason.CAMPAIGN_ENDED,
            suppress=False,  # an ended campaign keeps no address hashes (ADR 0006)
        )
        # Someone whose sign-up raced the end, or whose hold was lifted meanwhile, is
        # left for the next run, and the campaign stays merely ended until then.
        complete = not Subscriber.objects.filter(campaign_id=campaign_id, legal_hold=False).exists()
        if complete:
            erasure.ended_campaign_suppressions_delete(campaign_id=campaign_id)
            Campaign.objects.filter(pk=campaign_id).update(status=Campaign.Status.ERASED)
    return CampaignEnd(campaign_id, outcome.erased, outcome.held, cancelled, complete=complete)


@contextmanager
def _advisory_lock(namespace: int, key: int) -> Iterator[bool]:
    """A session-level lock: it outlives the batch transactions, and dies with the connection."""
    if connection.vendor != "postgresql":
        yield True  # the SQLite demo serialises writes anyway
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


def _stop_sending(campaign: Campaign) -> int:
    """Mark the campaign ended, which stops sign-ups and sends, and cancel its live mailings."""
    Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.ACTIVE).update(status=Campaign.Status.ENDED)
    live = Mailing.objects.filter(campaign=campaign, status__in=[Mailing.Status.SCHEDULED, Mailing.Status.SENDING])
    cancelled = 0
    for mailing_id in live.values_list("pk", flat=True):
        try:
            mailings.mailing_cancel(mailing_id=mailing_id)
        except ValidationError:
            continue  # it finished or was cancelled a moment ago
        cancelled += 1
    return cancelled


def campaign_end_preview(*, campaign: Campaign) -> EndPreview:
    counts = Subscriber.objects.filter(campaign=campaign).aggregate(
        to_erase=Count("pk", filter=Q(legal_hold=False)), held=Count("pk", filter=Q(legal_hold=True))
    )
    ends_on = campaign.ends_on
    return EndPreview(
        ends_on=ends_on,
        erase_on=ends_on + datetime.timedelta(days=1) if ends_on else None,
        to_erase=counts["to_erase"],
        held=counts["held"],
        erased=campaign.status == Campaign.Status.ERASED,
    )


def _day(day: datetime.date | None) -> str:
    return dateformat.format(day, "j F Y") if day else ""


def campaign_end_date_problems(
    *,
    campaign: Campaign | None,
    ends_on: datetime.date | None,
    erase_confirmed: bool,
    today: datetime.date | None = None,
) -> list[str]:
    """Refuse an end date that has already passed, unless staff confirm the erasure it starts.

    A date in the past is almost always a typo (2025 for 2026), and the next hourly
    run would erase everyone. An unchanged date is no new decision.
    """
    today = today or timezone.localdate()
    if ends_on is None or ends_on >= today or erase_confirmed:
        return []
    if campaign is not None and campaign.pk and campaign.ends_on == ends_on:
        return []
    people = Subscriber.objects.filter(campaign=campaign).count() if campaign is not None and campaign.pk else 0
    return [
        f"{_day(ends_on)} has already passed: saving it ends the campaign now and erases all {people} of its "
        "subscribers within minutes. Choose a later date, or tick “Erase now” to confirm."
    ]


def campaign_settings_changed(*, campaign: Campaign, actor: Actor, before: dict[str, Any]) -> None:
    """Record a change of a campaign's settings: each field, as it was and as it is now
    (settings hold no subscriber's data)."""
    if not before:
        return
    changes = {name: [_shown(value), _shown(getattr(campaign, name, None))] for name, value in before.items()}
    audit_record(
        actor=actor, action="campaign_settings_changed", campaign_id=campaign.pk, target_type="campaign",
        target_id=campaign.pk, changes=changes,
    )  # fmt: skip


def _shown(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def campaign_end_confirmed(*, campaign: Campaign, actor: Actor) -> None:
    """Staff confirmed a past end date: record who, and start the end at once."""
    audit_record(
        actor=actor, action="campaign_end_confirmed", campaign_id=campaign.pk, target_type="campaign",
        target_id=campaign.pk, ends_on=str(campaign.ends_on),
    )  # fmt: skip
    enqueue_on_commit("subscriptions.end_campaign", campaign.pk)


def campaign_end_notice_draft(*, campaign: Campaign, actor: Actor = None) -> Mailing:
    """A draft service notice telling every active subscriber when the campaign ends and
    their data goes, for staff to review and send from Mailings."""
    if campaign.ends_on is None:
        raise ValidationError("Set the campaign's end date first: the notice tells people when it is.")
    preview = campaign_end_preview(campaign=campaign)
    ends, erase_on = _day(campaign.ends_on), _day(preview.erase_on)
    body = (
        'Hello {{ first_name|default:"there" }},\n\n'
        f"{campaign.name} ends on {ends}. This is the last you will hear from us about it.\n\n"
        f"On {erase_on} we will delete your email address, your name and the record of what you chose. "
        "You do not need to do anything.\n\n"
        "If you would rather stop now, use the unsubscribe link below.\n"
    )
    mailing = mailings.mailing_create(
        campaign=campaign, kind=Mailing.Kind.SERVICE_NOTICE, subject=f"{campaign.name} ends on {ends}", body=body,
        created_by=recorded_actor(actor),
    )  # fmt: skip
    audit_record(
        actor=actor,
        action="campaign_end_notice_drafted",
        campaign_id=campaign.pk,
        target_type="mailing",
        target_id=mailing.pk,
    )
    return mailing
