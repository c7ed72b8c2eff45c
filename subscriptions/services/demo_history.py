"""Generated history for the zero-configuration demo, so the dashboard's charts have
something to show: some weeks of plausible daily counts for each preset campaign and its
topics (sign-ups, confirmations, expiries, withdrawals and erasures by reason, sends,
bounces, complaints).

Aggregate counts only (DailyStat rows): no people, no subscriptions, no consent events,
so nothing here can be mistaken for evidence. Each day's counts come from a random
generator seeded by the seed, the campaign and the day (a day's sign-ups are the same
whenever it is generated; the audience, and so the mail, grows towards the last day);
and the whole range is replaced, never added to, so running it again changes nothing.
It replaces whatever counts the preset campaigns had in the range: demo databases only
(the command refuses otherwise).
"""

import datetime
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from subscriptions.models import Campaign, DailyStat, Topic
from subscriptions.services.presets import preset_files

DEFAULT_WEEKS = 16
DEFAULT_SEED = 18
Metric = DailyStat.Metric


def weekly(*weekdays: int) -> Callable[[datetime.date], bool]:
    """Mailings on these days of the week (Monday is 0)."""
    return lambda day: day.weekday() in weekdays


def monthly_with_extra(day: datetime.date) -> bool:
    """A newsletter on each month's first Wednesday, and an ad hoc update on its third Tuesday."""
    return (day.weekday() == 2 and day.day <= 7) or (day.weekday() == 1 and 15 <= day.day <= 21)


@dataclass(frozen=True)
class Profile:
    """How one campaign's counts behave: the scale, the rates, and when it mails."""

    signups: int  # on a typical weekday
    confirmed: float  # share of sign-ups confirmed
    audience: int  # active people on the last day of the history
    growth: float  # the audience's growth per day, as a share of its size
    mails_on: Callable[[datetime.date], bool]
    bounced: float  # share of emails sent
    complained: float  # share of emails sent
    left: float = 0.002  # share of the audience leaving after a mailing
    period: int = 70  # days between the peaks of sign-up interest
    reasons: dict[str, float] = field(
        default_factory=lambda: {
            "one_click": 0.55,
            "unsubscribe_page": 0.2,
            "preferences": 0.2,
            "erasure_request": 0.05,
        }
    )


PROFILES: dict[str, Profile] = {
    "police-recruitment": Profile(
        signups=180, confirmed=0.72, audience=42_000, growth=0.002, mails_on=weekly(3),
        bounced=0.006, complained=0.0004, period=91,
    ),
    "civil-service-jobs": Profile(
        signups=320, confirmed=0.78, audience=120_000, growth=0.001, mails_on=weekly(0, 1, 2, 3, 4),
        bounced=0.004, complained=0.0003, left=0.0004, period=56,
    ),
    "careers-job-alerts": Profile(
        signups=25, confirmed=0.7, audience=6_500, growth=0.0015, mails_on=weekly(1, 4),
        bounced=0.008, complained=0.0006,
    ),
    "university-careers": Profile(
        signups=40, confirmed=0.65, audience=9_000, growth=0.001, mails_on=weekly(0),
        bounced=0.01, complained=0.0005, period=120,
    ),
    # Its complaints sit just over the 0.1 % warning line, so the demo shows that warning.
    "civil-service-community": Profile(
        signups=15, confirmed=0.8, audience=3_800, growth=0.0005, mails_on=monthly_with_extra,
        bounced=0.005, complained=0.0015, left=0.004,
        reasons={"one_click": 0.45, "unsubscribe_page": 0.15, "preferences": 0.15, "inbound_email": 0.25},
    ),
}  # fmt: skip
DEFAULT_PROFILE = Profile(
    signups=30, confirmed=0.7, audience=5_000, growth=0.001, mails_on=weekly(2), bounced=0.006, complained=0.0004
)
# Where the waves of sign-up interest are measured from, so a day's sign-ups do not
# depend on the day the history is generated.
ANCHOR = datetime.date(2025, 1, 1)


@dataclass(frozen=True)
class HistoryReport:
    slug: str
    since: datetime.date
    until: datetime.date
    rows: int
    signups: int


def demo_history_generate(
    *, weeks: int = DEFAULT_WEEKS, until: datetime.date | None = None, seed: int = DEFAULT_SEED
) -> list[HistoryReport]:
    """Replace the preset campaigns' daily counts from `weeks` weeks before `until`
    (default: yesterday, so today's real counts are left alone) to `until`."""
    until = until or timezone.localdate() - datetime.timedelta(days=1)
    since = until - datetime.timedelta(days=7 * weeks - 1)
    slugs = [data["slug"] for data in preset_files()]
    campaigns = list(Campaign.objects.filter(slug__in=slugs).order_by("slug"))
    reports = []
    with transaction.atomic():
        DailyStat.objects.filter(campaign__in=campaigns, day__range=(since, until)).delete()
        for campaign in campaigns:
            rows = campaign_history(campaign=campaign, since=since, until=until, seed=seed)
            DailyStat.objects.bulk_create(rows, batch_size=1000)
            signups = sum(row.count for row in rows if row.metric == Metric.SIGNUPS)
            reports.append(HistoryReport(campaign.slug, since, until, rows=len(rows), signups=signups))
    return reports


def campaign_history(*, campaign: Campaign, since: datetime.date, until: datetime.date, seed: int) -> list[DailyStat]:
    """One campaign's generated rows, unsaved, for every day from `since` to `until`."""
    profile = PROFILES.get(campaign.slug, DEFAULT_PROFILE)
    topics = list(campaign.topics.filter(archived=False).order_by("position", "pk"))
    weights = _topic_weights(topics, campaign.slug, seed)
    rows: list[DailyStat] = []
    day = since
    while day <= until:
        # The audience grows towards its profile size on the last day, whatever the date.
        audience = round(profile.audience / (1 + profile.growth * (until - day).days))
        counts = _day_counts(profile, campaign, day, seed, audience)
        rows += _campaign_rows(campaign, day, counts)
        rows += _topic_rows(campaign, day, counts, topics, weights, _rng(seed, campaign.slug, day, "topics"))
        day += datetime.timedelta(days=1)
    return rows


@dataclass
class DayCounts:
    signups: int = 0
    confirmations: int = 0
    expired: int = 0
    sends: int = 0
    bounces: int = 0
    complaints: int = 0
    withdrawals: Counter[str] = field(default_factory=Counter)


def _rng(seed: int, slug: str, day: datetime.date, part: str = "") -> random.Random:
    # A string seed is hashed with SHA-512: the same on every run and machine.
    return random.Random(f"{seed}:{slug}:{day.isoformat()}:{part}")  # noqa: S311 (made-up counts, no secret)


def _signups(profile: Profile, slug: str, day: datetime.date, seed: int) -> tuple[int, int]:
    """The day's sign-ups and confirmations: a weekly rhythm, a slow wave of interest, noise."""
    rng = _rng(seed, slug, day, "signups")
    weekend = 0.55 if day.weekday() >= 5 else 1.0
    wave = 1 + 0.35 * math.sin(2 * math.pi * (day - ANCHOR).days / profile.period)
    signups = round(profile.signups * weekend * wave * rng.uniform(0.8, 1.2))
    confirmations = min(signups, round(signups * profile.confirmed * rng.uniform(0.95, 1.05)))
    return signups, confirmations


def _day_counts(profile: Profile, campaign: Campaign, day: datetime.date, seed: int, audience: int) -> DayCounts:
    counts = DayCounts()
    counts.signups, counts.confirmations = _signups(profile, campaign.slug, day, seed)
    # Sign-ups not confirmed within the pending expiry are deleted then, and counted as expired.
    earlier = day - datetime.timedelta(days=campaign.pending_expiry_days)
    requested, confirmed = _signups(profile, campaign.slug, earlier, seed)
    counts.expired = requested - confirmed
    rng = _rng(seed, campaign.slug, day, "mail")
    if profile.mails_on(day):
        counts.sends = round(audience * rng.uniform(0.97, 0.995))
        counts.bounces = round(counts.sends * profile.bounced * rng.uniform(0.7, 1.3))
        counts.complaints = round(counts.sends * profile.complained * rng.uniform(0.8, 1.2))
        leaving = round(counts.sends * profile.left * rng.uniform(0.7, 1.3))
    else:
        leaving = round(audience * profile.left * 0.1 * rng.uniform(0.5, 1.5))
    # Every complaint and most bounces (the hard ones) end the person's subscription.
    counts.withdrawals["complaint"] = counts.complaints
    counts.withdrawals["hard_bounce"] = round(counts.bounces * 0.7)
    reasons = list(profile.reasons)
    counts.withdrawals.update(rng.choices(reasons, weights=[profile.reasons[r] for r in reasons], k=leaving))
    return counts


def _campaign_rows(campaign: Campaign, day: datetime.date, counts: DayCounts) -> list[DailyStat]:
    totals: list[tuple[str, str, int]] = [
        (Metric.SIGNUPS, "", counts.signups),
        (Metric.CONFIRMATIONS, "", counts.confirmations),
        (Metric.EXPIRED, "", counts.expired),
        (Metric.SENDS, "", counts.sends),
        (Metric.BOUNCES, "", counts.bounces),
        (Metric.COMPLAINTS, "", counts.complaints),
    ]
    for reason, count in sorted(counts.withdrawals.items()):
        # Each withdrawal is followed by the person's erasure, counted under the same reason.
        totals += [(Metric.WITHDRAWALS, reason, count), (Metric.ERASURES, reason, count)]
    return [
        DailyStat(campaign=campaign, topic=None, day=day, metric=metric, reason=reason, count=count)
        for metric, reason, count in totals
        if count > 0
    ]


def _topic_weights(topics: list[Topic], slug: str, seed: int) -> list[float]:
    """How popular each entity topic is (some forces draw many more people than others)."""
    rng = random.Random(f"{seed}:{slug}:topic-weights")  # noqa: S311 (made-up counts, no secret)
    return [rng.lognormvariate(0, 0.8) if topic.kind == Topic.Kind.ENTITY else 0.0 for topic in topics]


def _topic_rows(
    campaign: Campaign,
    day: datetime.date,
    counts: DayCounts,
    topics: list[Topic],
    weights: list[float],
    rng: random.Random,
) -> list[DailyStat]:
    """Confirmations per topic (a person may choose several), and people leaving one topic
    from the preference page (withdrawals, reason "preferences")."""
    chosen: Counter[int] = Counter()
    general = [topic for topic in topics if topic.kind == Topic.Kind.GENERAL]
    for index, topic in enumerate(general):
        share = 0.9 if index == 0 else 0.55
        chosen[topic.pk] = round(counts.confirmations * share * rng.uniform(0.9, 1.1))
    entities = [(topic, weight) for topic, weight in zip(topics, weights, strict=True) if weight > 0]
    if entities:
        picks = round(counts.confirmations * 1.4)  # people choose one force or two
        chosen.update(topic.pk for topic in rng.choices([t for t, _ in entities], [w for _, w in entities], k=picks))
    leaving = round(chosen.total() * 0.06)
    left = Counter(rng.choices(list(chosen), weights=list(chosen.values()), k=leaving)) if leaving else Counter()
    rows = [
        DailyStat(campaign=campaign, topic_id=pk, day=day, metric=Metric.CONFIRMATIONS, count=count)
        for pk, count in chosen.items()
        if count > 0
    ]
    rows += [
        DailyStat(campaign=campaign, topic_id=pk, day=day, metric=Metric.WITHDRAWALS, reason="preferences", count=count)
        for pk, count in left.items()
    ]
    return rows
