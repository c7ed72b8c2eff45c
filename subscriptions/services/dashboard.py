"""The campaign dashboard's figures: aggregates only, never a person.

Each figure is one grouped query, however many topics or days it covers: the daily
series from DailyStat's campaign-wide rows, active subscribers per topic from open
subscriptions, and the sent mailings' own counters.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from subscriptions.models import DailyStat, Mailing, Subscriber, Topic
from subscriptions.services.withdrawal import WithdrawalReason

PERIODS = (30, 90, 365)
DEFAULT_PERIOD = 30

# Gmail's and Yahoo's rules for bulk senders: spam complaints must stay under 0.3 % of
# the mail delivered, and Gmail asks senders to keep them under 0.1 %.
COMPLAINT_WARNING = Decimal("0.001")
COMPLAINT_LIMIT = Decimal("0.003")

CHARTED = (
    DailyStat.Metric.SIGNUPS,
    DailyStat.Metric.CONFIRMATIONS,
    DailyStat.Metric.WITHDRAWALS,
    DailyStat.Metric.ERASURES,
)

REASON_LABELS: dict[str, str] = {
    WithdrawalReason.ONE_CLICK: "One-click unsubscribe",
    WithdrawalReason.UNSUBSCRIBE_PAGE: "Unsubscribe page",
    WithdrawalReason.PREFERENCES: "Preferences page",
    WithdrawalReason.INBOUND_EMAIL: "Unsubscribe by email",
    WithdrawalReason.ERASURE_REQUEST: "Asked to be erased",
    WithdrawalReason.COMPLAINT: "Spam complaint",
    WithdrawalReason.HARD_BOUNCE: "Address bounced",
    WithdrawalReason.ESP_UNSUBSCRIBE: "Unsubscribed at the email provider",
    WithdrawalReason.STAFF: "Removed by staff",
    WithdrawalReason.LAPSED: "Did not reconfirm",
    WithdrawalReason.CAMPAIGN_ENDED: "Campaign ended",
    WithdrawalReason.RETENTION_LIMIT: "Kept for the longest time allowed",
}


def reason_label(reason: str) -> str:
    """Words for a withdrawal reason as DailyStat records it (an unknown one as it is)."""
    if not reason:
        return "Reason not recorded"
    return REASON_LABELS.get(reason, reason)


def period_start(*, days: int, today: datetime.date | None = None) -> datetime.date:
    """The first day of a period of `days` days that ends today (today included)."""
    return (today or timezone.localdate()) - datetime.timedelta(days=days - 1)


@dataclass(frozen=True)
class Rate:
    """`part` of `whole`, e.g. 3 complaints of 1,000 mails delivered."""

    part: int
    whole: int

    @property
    def fraction(self) -> Decimal | None:
        return Decimal(self.part) / Decimal(self.whole) if self.whole else None

    @property
    def percent(self) -> Decimal | None:
        fraction = self.fraction
        return None if fraction is None else fraction * 100


@dataclass(frozen=True)
class DailySeries:
    """Counts per day from `since` to `until`, both included; a day with no rows is zeros.
    `withdrawals` holds one list per reason that occurs, in a fixed order."""

    since: datetime.date
    until: datetime.date
    signups: list[int]
    confirmations: list[int]
    withdrawals: dict[str, list[int]]
    erasures: list[int]

    @property
    def days(self) -> list[datetime.date]:
        return [self.since + datetime.timedelta(days=n) for n in range(len(self.signups))]

    @property
    def withdrawals_total(self) -> list[int]:
        return [sum(counts) for counts in zip(*self.withdrawals.values(), strict=True)] or [0] * len(self.signups)

    @property
    def confirmation_rate(self) -> Rate:
        return Rate(part=sum(self.confirmations), whole=sum(self.signups))

    def columns(self) -> list[tuple[str, list[int]]]:
        """Every series with its heading, in the order of the table and the CSV."""
        reasons = [(f"Withdrawals: {reason_label(reason)}", counts) for reason, counts in self.withdrawals.items()]
        return [
            ("Sign-ups", self.signups),
            ("Confirmations", self.confirmations),
            *reasons,
            ("Withdrawals (all reasons)", self.withdrawals_total),
            ("Erasures", self.erasures),
        ]


def _reason_order(reason: str) -> tuple[int, str]:
    known = list(WithdrawalReason)
    return (known.index(WithdrawalReason(reason)), "") if reason in known else (len(known), reason)


def daily_series(*, campaign_id: int, days: int, today: datetime.date | None = None) -> DailySeries:
    """Sign-ups, confirmations, withdrawals by reason and erasures per day over the last
    `days` days. Campaign-wide rows only: the per-topic ones count the same people again."""
    since = period_start(days=days, today=today)
    until = since + datetime.timedelta(days=days - 1)
    rows = (
        DailyStat.objects.filter(campaign_id=campaign_id, topic__isnull=True, day__range=(since, until))
        .filter(metric__in=[str(metric) for metric in CHARTED])
        .values_list("day", "metric", "reason")
        .annotate(total=Sum("count"))
        .order_by()
    )
    counts: dict[str, list[int]] = {str(metric): [0] * days for metric in CHARTED}
    withdrawals: dict[str, list[int]] = {}
    for day, metric, reason, total in rows:
        index = (day - since).days
        if metric == DailyStat.Metric.WITHDRAWALS:
            withdrawals.setdefault(reason, [0] * days)[index] += total
        counts[metric][index] += total
    return DailySeries(
        since=since, until=until, signups=counts["signups"], confirmations=counts["confirmations"],
        withdrawals={reason: withdrawals[reason] for reason in sorted(withdrawals, key=_reason_order)},
        erasures=counts["erasures"],
    )  # fmt: skip


@dataclass(frozen=True)
class TopicCount:
    name: str
    kind: str
    archived: bool
    active: int


TOPIC_SORTS = ("name", "count")


def _active_following(prefix: str = "") -> Q:
    """People who hear about a topic: confirmed, still subscribed, and not restricted (Art. 18)."""
    return Q(
        **{f"{prefix}ended_at__isnull": True},
        **{f"{prefix}subscriber__status": Subscriber.Status.ACTIVE},
        **{f"{prefix}subscriber__restricted": False},
    )


def topic_counts(
    *, campaign_id: int, sort: str = "name", descending: bool = False, name_contains: str = ""
) -> list[TopicCount]:
    """Every topic of the campaign with its active subscribers, in one grouped query."""
    topics = Topic.objects.filter(campaign_id=campaign_id)
    if name_contains:
        topics = topics.filter(name__icontains=name_contains)
    # Only the campaign's own people, even if a row ever tied a topic to another campaign's.
    own = _active_following("subscriptions__") & Q(subscriptions__subscriber__campaign_id=campaign_id)
    topics = topics.annotate(active=Count("subscriptions", filter=own))
    by_name = Lower("name").desc() if descending and sort == "name" else Lower("name").asc()
    by_count = F("active").desc() if descending else F("active").asc()
    ordering = [by_count, Lower("name").asc()] if sort == "count" else [by_name]
    rows = topics.order_by(*ordering, "pk").values_list("name", "kind", "archived", "active")
    kinds = dict(Topic.Kind.choices)
    return [
        TopicCount(name=name, kind=kinds.get(kind, kind), archived=archived, active=active)
        for name, kind, archived, active in rows
    ]


def active_people(*, campaign_id: int) -> int:
    """People who receive the campaign's mailings: confirmed and not restricted."""
    return Subscriber.objects.filter(campaign_id=campaign_id, status=Subscriber.Status.ACTIVE, restricted=False).count()


class ComplaintLevel(StrEnum):
    WITHIN = "within"
    WARNING = "warning"
    OVER = "over"


def complaint_level(complaints: Rate) -> ComplaintLevel:
    """Where a complaint rate stands against the bulk senders' thresholds."""
    fraction = complaints.fraction
    if fraction is None or fraction < COMPLAINT_WARNING:
        return ComplaintLevel.WITHIN
    return ComplaintLevel.WARNING if fraction < COMPLAINT_LIMIT else ComplaintLevel.OVER


@dataclass(frozen=True)
class MailingFigures:
    subject: str
    finished_at: datetime.datetime
    delivered: int
    bounces: Rate
    complaints: Rate

    @property
    def complaint_level(self) -> ComplaintLevel:
        return complaint_level(self.complaints)


def mailings_sent(*, campaign_id: int, since: datetime.date) -> list[MailingFigures]:
    """The campaign's mailings finished on or after `since`, newest first, with their rates
    over the mail delivered (Mailing's counters, kept after deliveries are deleted)."""
    start = timezone.make_aware(datetime.datetime.combine(since, datetime.time.min))
    mailings = (
        Mailing.objects.filter(campaign_id=campaign_id, status=Mailing.Status.SENT)
        .alias(done_at=Coalesce("finished_at", "started_at", "created_at"))
        .filter(done_at__gte=start)
        .annotate(done=F("done_at"))
        .order_by("-done", "-pk")
        .values_list("subject", "done", "sent_count", "bounced_count", "complained_count")
    )
    return [
        MailingFigures(subject, done, sent, bounces=Rate(bounced, sent), complaints=Rate(complained, sent))
        for subject, done, sent, bounced, complained in mailings
    ]
