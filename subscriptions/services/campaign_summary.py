"""My campaigns' figures: for each campaign, its active audience, sign-ups this week, next
scheduled mailing, complaint rate and circuit breaker; and, once for the page, the sign-up
intake's backlog. Aggregates only, never a person.

However many campaigns there are, it costs the same: three SQL queries (the campaigns
with their next mailing, the audiences, the daily counts), each grouped by campaign,
one Redis MGET for the breakers and one XLEN for the backlog.
"""

import datetime
import logging
import math
from collections.abc import Collection
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from subscriptions import abuse
from subscriptions.models import Campaign, DailyStat, Mailing, Subscriber
from subscriptions.services.dashboard import ComplaintLevel, Rate, complaint_level
from subscriptions.services.signup import stream

logger = logging.getLogger(__name__)
Metric = DailyStat.Metric

WEEK_DAYS = 7
COMPLAINT_DAYS = 30
# One drain records about 150 sign-ups a second (docs/benchmarks.md). A flood is absorbed
# by the stream as designed; more than a minute's recording waiting means confirmation
# emails are minutes late, or the transactional workers are not keeping up at all.
RECORDED_PER_SECOND = 150
BACKLOG_WARNING = 60 * RECORDED_PER_SECOND


@dataclass(frozen=True)
class ComplaintRate:
    """Complaints against emails sent over the last COMPLAINT_DAYS days (today included)."""

    complaints: int
    sends: int

    @property
    def percent(self) -> float | None:
        return 100 * self.complaints / self.sends if self.sends else None

    @property
    def level(self) -> ComplaintLevel:
        """Against the bulk senders' thresholds, as the dashboard judges each mailing."""
        return complaint_level(Rate(part=self.complaints, whole=self.sends))

    @property
    def over_limit(self) -> bool:
        return self.level == ComplaintLevel.OVER

    @property
    def high(self) -> bool:
        """At or over the warning threshold (0.1 %)."""
        return self.level != ComplaintLevel.WITHIN


@dataclass(frozen=True)
class NextMailing:
    subject: str
    scheduled_at: datetime.datetime


@dataclass(frozen=True)
class Figures:
    active_audience: int
    signups_this_week: int
    next_mailing: NextMailing | None
    complaints: ComplaintRate
    cap: abuse.ConfirmationCap | None  # None: Redis did not answer

    @property
    def cap_reached(self) -> bool:
        return self.cap is not None and self.cap.reached

    @property
    def cap_resets_at(self) -> datetime.datetime | None:
        return datetime.datetime.fromtimestamp(self.cap.resets_at, tz=datetime.UTC) if self.cap else None


@dataclass(frozen=True)
class CampaignSummary:
    campaign: Campaign
    figures: Figures | None  # None: not asked for (the member may not see its counts)


@dataclass(frozen=True)
class Intake:
    """The sign-ups accepted and not yet recorded, for every campaign together (the
    stream is one). `waiting` is None when Redis did not answer."""

    waiting: int | None

    @property
    def behind(self) -> bool:
        return self.waiting is not None and self.waiting > BACKLOG_WARNING

    @property
    def minutes(self) -> int:
        """Minutes of recording the backlog holds at the measured rate, rounded up."""
        return math.ceil((self.waiting or 0) / RECORDED_PER_SECOND / 60)


def campaign_summaries(
    *, campaign_ids: Collection[int], figures_for: Collection[int], today: datetime.date | None = None
) -> list[CampaignSummary]:
    """These campaigns by name, with their figures for those among `figures_for`."""
    today = today or timezone.localdate()
    campaigns = _campaigns_with_next_mailing(campaign_ids)
    wanted = set(figures_for)
    counted = [campaign.pk for campaign in campaigns if campaign.pk in wanted]
    audiences = _active_audiences(counted)
    counts = _recent_counts(counted, today)
    caps = _caps(counted)
    return [
        CampaignSummary(
            campaign=campaign,
            figures=_figures(campaign, audiences, counts.get(campaign.pk, {}), caps)
            if campaign.pk in counted
            else None,
        )
        for campaign in campaigns
    ]


def _figures(
    campaign: Campaign,
    audiences: dict[int, int],
    counts: dict[str, int],
    caps: dict[int, abuse.ConfirmationCap] | None,
) -> Figures:
    return Figures(
        active_audience=audiences.get(campaign.pk, 0),
        signups_this_week=counts.get("signups", 0),
        next_mailing=_next_mailing(campaign),
        complaints=ComplaintRate(complaints=counts.get("complaints", 0), sends=counts.get("sends", 0)),
        cap=caps.get(campaign.pk) if caps is not None else None,
    )


def intake() -> Intake:
    try:
        return Intake(waiting=stream.backlog())
    except RedisError:
        logger.warning("My campaigns: Redis did not answer; the sign-up backlog is not shown")
        return Intake(waiting=None)


def _campaigns_with_next_mailing(campaign_ids: Collection[int]) -> list[Campaign]:
    scheduled = Mailing.objects.filter(campaign=OuterRef("pk"), status=Mailing.Status.SCHEDULED).order_by(
        "scheduled_at", "pk"
    )
    return list(
        Campaign.objects.filter(pk__in=campaign_ids)
        .annotate(
            next_subject=Subquery(scheduled.values("subject")[:1]),
            next_scheduled_at=Subquery(scheduled.values("scheduled_at")[:1]),
        )
        .order_by("name", "pk")
    )


def _next_mailing(campaign: Campaign) -> NextMailing | None:
    subject, at = getattr(campaign, "next_subject", None), getattr(campaign, "next_scheduled_at", None)
    return NextMailing(subject=subject, scheduled_at=at) if subject is not None and at is not None else None


def _active_audiences(campaign_ids: list[int]) -> dict[int, int]:
    """Active people not restricted (Art. 18): those a mailing to everyone would reach."""
    rows = (
        Subscriber.objects.filter(campaign_id__in=campaign_ids, status=Subscriber.Status.ACTIVE, restricted=False)
        .values("campaign_id")
        .annotate(people=Count("pk"))
        .values_list("campaign_id", "people")
    )
    return dict(rows)


def _recent_counts(campaign_ids: list[int], today: datetime.date) -> dict[int, dict[str, int]]:
    """Sign-ups over the last week, sends and complaints over the last COMPLAINT_DAYS, from
    the campaign-wide daily counts.

    Complaints come from the daily counts rather than the mailings' counters: mailbox
    providers judge a sender by complaints against mail over recent days, whichever
    mailing it was; a complaint is counted on the day it arrives, as theirs are; and these
    are the numbers of the dashboard's daily charts, so the two pages agree."""
    week = Q(day__gte=today - datetime.timedelta(days=WEEK_DAYS - 1))
    rows = (
        DailyStat.objects.filter(
            campaign_id__in=campaign_ids,
            topic__isnull=True,
            day__range=(today - datetime.timedelta(days=COMPLAINT_DAYS - 1), today),
            metric__in=[Metric.SIGNUPS, Metric.SENDS, Metric.COMPLAINTS],
        )
        .values("campaign_id")
        .annotate(
            signups=Sum("count", filter=week & Q(metric=Metric.SIGNUPS)),
            sends=Sum("count", filter=Q(metric=Metric.SENDS)),
            complaints=Sum("count", filter=Q(metric=Metric.COMPLAINTS)),
        )
    )
    return {
        campaign_id: {"signups": signups or 0, "sends": sends or 0, "complaints": complaints or 0}
        for campaign_id, signups, sends, complaints in rows.values_list("campaign_id", "signups", "sends", "complaints")
    }


def _caps(campaign_ids: list[int]) -> dict[int, abuse.ConfirmationCap] | None:
    if not campaign_ids:
        return {}
    try:
        return abuse.confirmation_caps(campaign_ids)
    except RedisError:
        logger.warning("My campaigns: Redis did not answer; the sign-up caps are not shown")
        return None
