"""Claims and marks: a worker claims a batch of queued deliveries (re-checking each
person), and marks the batch's results in one statement; a mailing is complete when
none of its deliveries is queued or sending.

A claim that outlives its lease becomes `unknown` and is never sent again
(docs/adr/0003-at-most-once-sending-and-unknown.md).
"""

from collections import Counter
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from subscriptions.addresses import email_hmac
from subscriptions.models import Delivery, Mailing, Subscriber, Suppression
from subscriptions.models.mailings import mailing_delivery_ids
from subscriptions.services.sending import portable
from subscriptions.services.sending.fan_out import AUDIENCE_SQL, mailing_audience
from subscriptions.services.sending.records import Claimed, Result
from subscriptions.services.stats import stat_increment

_CLAIM = f"""
WITH claimed AS (
  UPDATE subscriptions_delivery d
  SET status = '{Delivery.Status.SENDING}', claimed_at = now(), attempts = d.attempts + 1
  WHERE d.id = ANY(ARRAY(
    SELECT id FROM subscriptions_delivery
    WHERE id > %(after)s AND id < %(end)s AND status = '{Delivery.Status.QUEUED}'
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
  RETURNING d.id, d.subscriber_id
)
SELECT c.id, c.subscriber_id, coalesce(s.email, ''), coalesce(s.first_name, ''), coalesce(s.link_key, ''),
  coalesce(s.email_hmac, ''),
  s.id IS NOT NULL AND s.status = '{Subscriber.Status.ACTIVE}' AND NOT s.restricted
  {{audience}}
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_suppression x WHERE x.campaign_id = s.campaign_id AND x.email_hmac = s.email_hmac)
FROM claimed c LEFT JOIN subscriptions_subscriber s ON s.id = c.subscriber_id
ORDER BY c.id
"""  # noqa: S608 - the models' status constants, and later an AUDIENCE_SQL entry
# The LEFT JOIN: a delivery whose person is gone (erased between fan-out and claim)
# comes back ineligible and is marked skipped, rather than left `sending` to expire.

_MARK_ID_ONLY = """
UPDATE subscriptions_delivery d SET esp_message_id = v.esp_id
FROM unnest(%s::bigint[], %s::text[]) AS v(id, esp_id)
WHERE d.id = v.id AND d.esp_message_id = '' AND v.esp_id <> ''
"""

_MARK = f"""
UPDATE subscriptions_delivery d
SET status = v.status,
    sent_at = CASE WHEN v.status = '{Delivery.Status.SENT}' THEN now() ELSE d.sent_at END,
    claimed_at = CASE WHEN v.status = '{Delivery.Status.QUEUED}' THEN NULL ELSE d.claimed_at END,
    esp_message_id = v.esp_id,
    error = v.error
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(id, status, esp_id, error)
WHERE d.id = v.id AND d.status = '{Delivery.Status.SENDING}'
RETURNING v.status
"""  # noqa: S608 - the model's status constants

# `sending` rows are found through their partial index; `queued` ones by walking the
# mailing's key range (a million rows in well under a second), once per task and sweep.
_COMPLETE = f"""
UPDATE subscriptions_mailing m SET status = '{Mailing.Status.SENT}', finished_at = now()
WHERE m.id = %(mailing)s AND m.status = '{Mailing.Status.SENDING}'
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_delivery d
    WHERE d.id >= %(first)s AND d.id < %(end)s AND d.status = '{Delivery.Status.QUEUED}')
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_delivery d
    WHERE d.status = '{Delivery.Status.SENDING}' AND d.id >= %(first)s AND d.id < %(end)s)
"""  # noqa: S608 - the models' status constants


def claim_size() -> int:
    # A batch must finish well inside its lease, whatever the rate, or the sweeper
    # would call it lost while it is still being sent.
    per_task_rate = settings.SEND_RATE_PER_SECOND / settings.SEND_PARALLELISM
    return max(1, min(settings.SEND_BATCH_SIZE, int(per_task_rate * settings.SEND_LEASE_SECONDS / 4)))


def deliveries_claim(*, mailing: Mailing, limit: int, after: int = 0) -> list[Claimed]:
    """Claim up to `limit` queued deliveries of the mailing, in key order, past the key
    `after` (0: from the mailing's first). Claims walk the primary key: starting where
    the last claim ended keeps that walk short however much is already sent."""
    audience, topic_ids = mailing_audience(mailing)
    if connection.vendor != "postgresql":  # the demo's SQLite
        audience_ids = topic_ids if audience == "topics" else None
        return portable.claim(mailing=mailing, topic_ids=audience_ids, limit=limit, after=after)
    sql = _CLAIM.format(audience=AUDIENCE_SQL[audience])
    first, end = mailing_delivery_ids(mailing.pk)
    params: dict[str, Any] = {"after": max(after, first - 1), "end": end, "limit": limit, "topics": topic_ids}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        claimed = [Claimed(*row) for row in cursor.fetchall()]
    _recheck_unhashed(mailing.campaign_id, claimed)
    return claimed


def _recheck_unhashed(campaign_id: int, claimed: list[Claimed]) -> None:
    """Rows saved without email_hmac escape the SQL anti-join: hash and check them here."""
    unhashed = {email_hmac(row.email): row for row in claimed if row.eligible and not row.email_hmac}
    if not unhashed:
        return
    suppressed = Suppression.objects.filter(campaign_id=campaign_id, email_hmac__in=list(unhashed))
    for digest in suppressed.values_list("email_hmac", flat=True):
        unhashed[digest].eligible = False


def deliveries_mark(*, mailing_id: int, campaign_id: int, results: dict[int, Result]) -> Counter[str]:
    """Record a batch's outcome in one statement, and the mailing's counters with it."""
    if not results:
        return Counter()
    with transaction.atomic():
        counts = _mark(results) if connection.vendor == "postgresql" else portable.mark(results)  # or the demo's SQLite
        _counts_add(mailing_id=mailing_id, campaign_id=campaign_id, counts=counts)
    return counts


def _mark(results: dict[int, Result]) -> Counter[str]:
    ids = list(results)
    values = [results[i] for i in ids]
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK,
            [ids, [v.status for v in values], [v.esp_message_id for v in values], [v.error[:200] for v in values]],
        )
        counts = Counter(row[0] for row in cursor.fetchall())
        if len(counts) < len(ids) and any(v.esp_message_id for v in values):
            # A webhook settled some of these before this mark (it skipped them):
            # they still take their message id, so that an id a batch call shared
            # is seen to name several people (reconcile._find), never just one.
            cursor.execute(_MARK_ID_ONLY, [ids, [v.esp_message_id for v in values]])
    return counts


def _counts_add(*, mailing_id: int, campaign_id: int, counts: Counter[str]) -> None:
    """Add a marked batch to its mailing's counters and its campaign's daily sends."""
    increments = {
        f"{status}_count": F(f"{status}_count") + n for status, n in counts.items() if status != Delivery.Status.QUEUED
    }
    if increments:
        Mailing.objects.filter(pk=mailing_id).update(**increments)
    stat_increment(campaign_id=campaign_id, metric="sends", count=counts[Delivery.Status.SENT])


def mailing_complete_if_done(*, mailing_id: int) -> bool:
    """A mailing is sent when none of its deliveries is queued or sending."""
    if connection.vendor != "postgresql":  # the demo's SQLite
        return portable.complete_if_done(mailing_id=mailing_id)
    first, end = mailing_delivery_ids(mailing_id)
    with connection.cursor() as cursor:
        cursor.execute(_COMPLETE, {"mailing": mailing_id, "first": first, "end": end})
        return cursor.rowcount == 1
