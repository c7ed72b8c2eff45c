"""The fan-out: one queued delivery per person a mailing goes to, made in set-based
INSERTs over ranges of subscriber ids; and the audience rule that claims re-check.

Delivery ids pack (mailing, subscriber) into one key (docs/adr/0004-packed-delivery-keys.md).
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from subscriptions.models import Delivery, Mailing, Subscriber
from subscriptions.models.mailings import PERSON_BITS
from subscriptions.services.sending import portable

AUDIENCE_SQL = {
    # One row per person however many audience topics they follow: the EXISTS is a
    # semi-join, and the primary key, which is the (mailing, person) pair, the last guard.
    "topics": """AND EXISTS (
        SELECT 1 FROM subscriptions_subscription sub
        WHERE sub.subscriber_id = s.id AND sub.ended_at IS NULL AND sub.topic_id = ANY(%(topics)s))""",
    "everyone": "",
}

# Rows go in key order (ORDER BY s.id), so every insert lands at the right edge of the
# one index there is. The id is models.delivery_id(mailing, subscriber).
_FAN_OUT = f"""
INSERT INTO subscriptions_delivery (id, mailing_id, subscriber_id, status, created_at, attempts, esp_message_id, error)
SELECT (%(mailing)s::bigint << %(bits)s) | s.id, %(mailing)s, s.id, '{Delivery.Status.QUEUED}', now(), 0, '', ''
FROM subscriptions_subscriber s
WHERE s.campaign_id = %(campaign)s AND s.status = '{Subscriber.Status.ACTIVE}' AND NOT s.restricted
  AND s.id >= %(first)s AND s.id <= %(last)s
  {{audience}}
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_suppression x WHERE x.campaign_id = s.campaign_id AND x.email_hmac = s.email_hmac)
ORDER BY s.id
{{on_conflict}}
"""  # noqa: S608 - the model's status constants, and later an AUDIENCE_SQL entry
# Only when an earlier attempt left rows (see mailing_fan_out): its speculative
# insertion costs about as much again as the insert itself.
_ON_CONFLICT = "ON CONFLICT (id) DO NOTHING"

_ID_RANGE = (
    "SELECT min(id), max(id) FROM subscriptions_subscriber"  # noqa: S608 - a model's status constant, below
    f" WHERE campaign_id = %s AND status = '{Subscriber.Status.ACTIVE}'"
)


def mailing_audience(mailing: Mailing) -> tuple[str, list[int]]:
    """Which AUDIENCE_SQL rule the mailing goes by, and its topics' ids for it."""
    if mailing.kind == Mailing.Kind.SERVICE_NOTICE:
        return "everyone", []
    return "topics", list(mailing.topics.values_list("pk", flat=True))


def mailing_fan_out(*, mailing: Mailing) -> int:
    """Make one queued delivery per person who should get this mailing; return how many
    deliveries it has (those of an earlier attempt included).

    A small campaign is one statement, in the caller's transaction. A large one is
    FANOUT_PARALLELISM statements at once, each over a range of subscriber ids on a
    connection of its own, committed as each finishes: one backend writes about
    70,000 rows a second here, and the work is CPU-bound. A range that fails leaves
    the others committed; the caller's transaction then rolls back (the mailing stays
    scheduled), and the next attempt adds only what is missing, since ON CONFLICT
    DO NOTHING skips the rows already there.

    The first attempt, the usual case, has nothing to skip: its statement is a plain
    INSERT (a quarter to a half less time for a million people). The primary key, the
    (mailing, subscriber) pair, still stands behind it, so should rows appear between
    the count and the insert (a lost caller's ranges still committing), the attempt
    fails on them rather than skipping them uncounted, and the next attempt completes it. An attempt
    that completes an earlier one counts the rows afresh once its own are in, since
    ON CONFLICT skips, uncounted, rows that commit while it runs."""
    audience, topic_ids = mailing_audience(mailing)
    if connection.vendor != "postgresql":  # the demo's SQLite
        return portable.fan_out(mailing=mailing, topic_ids=topic_ids if audience == "topics" else None)
    before = Delivery.objects.of_mailing(mailing.pk).count()  # an earlier attempt's rows
    sql = _FAN_OUT.format(audience=AUDIENCE_SQL[audience], on_conflict=_ON_CONFLICT if before else "")
    params: dict[str, Any] = {
        "mailing": mailing.pk, "bits": PERSON_BITS, "campaign": mailing.campaign_id, "topics": topic_ids,
    }  # fmt: skip
    ranges = _fan_out_ranges(mailing.campaign_id)
    if not ranges:
        return before
    inserted = _fan_out_insert(sql, params, ranges)
    return Delivery.objects.of_mailing(mailing.pk).count() if before else inserted


def _fan_out_insert(sql: str, params: dict[str, Any], ranges: list[tuple[int, int]]) -> int:
    """Run the fan-out statement over each id range; return the rows it inserted."""
    if len(ranges) == 1:
        with connection.cursor() as cursor:
            cursor.execute(sql, {**params, "first": ranges[0][0], "last": ranges[0][1]})
            return int(cursor.rowcount)

    def fan_out_range(bounds: tuple[int, int]) -> int:
        try:  # this thread's own connection, in its own transaction
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, {**params, "first": bounds[0], "last": bounds[1]})
                return int(cursor.rowcount)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="fan-out") as pool:
        return sum(pool.map(fan_out_range, ranges))


def _fan_out_ranges(campaign_id: int) -> list[tuple[int, int]]:
    """The campaign's active subscriber ids cut into FANOUT_PARALLELISM equal ranges
    (first, last), or one range when they span less than FANOUT_PARALLEL_FROM."""
    with connection.cursor() as cursor:
        cursor.execute(_ID_RANGE, [campaign_id])
        low, high = cursor.fetchone()
    if low is None:
        return []
    parts = settings.FANOUT_PARALLELISM if high - low + 1 >= settings.FANOUT_PARALLEL_FROM else 1
    edges = [low + (high - low + 1) * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(parts)]
