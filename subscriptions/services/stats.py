"""Aggregate daily counts: the only numbers that outlive the people they count."""

import datetime
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from subscriptions.models import DailyStat

_UPSERT = """
INSERT INTO subscriptions_dailystat (campaign_id, topic_id, day, metric, reason, count)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (campaign_id, topic_id, day, metric, reason)
DO UPDATE SET count = subscriptions_dailystat.count + EXCLUDED.count
"""


def stat_increment(
    *,
    campaign_id: int,
    metric: DailyStat.Metric | str,
    count: int = 1,
    topic_id: int | None = None,
    reason: str = "",
    day: datetime.date | None = None,
) -> None:
    """Add `count` to one daily counter, safely under concurrency."""
    if count <= 0:
        return
    day = day or timezone.localdate()
    if connection.vendor == "postgresql":
        # One statement, no read-modify-write race; the unique constraint treats NULL
        # topics as equal (NULLS NOT DISTINCT), so campaign-wide counters upsert too.
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, [campaign_id, topic_id, day, str(metric), reason, count])
        return
    _stat_increment_portable(campaign_id, metric, count, topic_id, reason, day)


def _stat_increment_portable(
    campaign_id: int, metric: str, count: int, topic_id: int | None, reason: str, day: datetime.date
) -> None:
    """The SQLite demo's path: writes there are serialised, so update-or-create is safe."""
    lookup = {"campaign_id": campaign_id, "topic_id": topic_id, "day": day, "metric": str(metric), "reason": reason}
    with transaction.atomic():
        if DailyStat.objects.filter(**lookup).update(count=F("count") + count):
            return
        try:
            with transaction.atomic():
                DailyStat.objects.create(**lookup, count=count)
        except IntegrityError:
            DailyStat.objects.filter(**lookup).update(count=F("count") + count)


@dataclass(frozen=True)
class DayCount:
    day: datetime.date
    metric: str
    reason: str
    count: int


def stats_by_day(
    *, campaign_id: int, since: datetime.date, until: datetime.date, topic_id: int | None = None
) -> list[DayCount]:
    """One campaign's counts from `since` to `until` (inclusive), by day, metric and reason.

    Campaign-wide counts by default; given a topic, that topic's own counts (only
    some metrics are kept per topic: confirmations, and withdrawals from one topic).
    """
    rows = DailyStat.objects.filter(campaign_id=campaign_id, day__range=(since, until))
    rows = rows.filter(topic_id=topic_id) if topic_id is not None else rows.filter(topic__isnull=True)
    return [
        DayCount(day=day, metric=metric, reason=reason, count=count)
        for day, metric, reason, count in rows.order_by("day", "metric", "reason").values_list(
            "day", "metric", "reason", "count"
        )
    ]


def stats_totals(
    *, campaign_id: int, since: datetime.date, until: datetime.date, topic_id: int | None = None
) -> dict[str, int]:
    """Each metric added up over the days, reasons together (e.g. for a dashboard's headline numbers)."""
    totals: dict[str, int] = {}
    for row in stats_by_day(campaign_id=campaign_id, since=since, until=until, topic_id=topic_id):
        totals[row.metric] = totals.get(row.metric, 0) + row.count
    return totals
