"""The sending engine: fan-out, claims, batches, faults, sweeping, completion.

The database is the record and the queue only a hint. A mailing's deliveries are
made in one set-based INSERT; workers claim batches with FOR UPDATE SKIP LOCKED,
re-check each person, send, and mark the batch in one UPDATE. A claim that outlives
its lease becomes `unknown` and is never resent: at most one email per person per
mailing, even if that means one fewer. (ESP webhooks reconcile `unknown`; see
services.reconcile.)
"""

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.mail import mailers
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.mail.mime import MimeTemplate, Recipient, UnsendableAddress, envelope_address
from subscriptions.mail.render import Personal, link_pattern, mailing_compile
from subscriptions.mail.transports.base import (
    Ambiguous,
    Misconfigured,
    Outcomes,
    Outgoing,
    Permanent,
    RateLimited,
    Refused,
    Transient,
    Transport,
    backoff_seconds,
    pause,
    transport_for,
    unexpected_fault,
)
from subscriptions.models import Campaign, ConsentEvent, Delivery, Mailing, Suppression
from subscriptions.models.mailings import PERSON_BITS, mailing_delivery_ids
from subscriptions.services.audit import audit_record
from subscriptions.services.enqueue import enqueue
from subscriptions.services.sending import portable
from subscriptions.services.sending.ratelimit import RateLimitTimeout, ratelimit_pause, ratelimit_take

# Webhook views reconcile through sending.delivery_reconcile; the rules live in services.reconcile.
from subscriptions.services.sending.reconcile import delivery_reconcile, mailing_progress  # noqa: F401
from subscriptions.services.stats import stat_increment
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from subscriptions.tokens import LinkPurpose, make_link_token_for

logger = logging.getLogger(__name__)

BULK_MAILER = "default"
# How long one task keeps claiming batches before handing over to a fresh task.
TASK_SECONDS = 60.0
# Without a heartbeat for this long, the sweeper presumes a mailing's tasks lost.
HEARTBEAT_SECONDS = 120
# After the ESP looks down, the mailing rests this long before the sweeper restarts it.
ESP_DOWN_REST_SECONDS = 60
# Transient failures in a row, each after its retries, that mean the ESP is down.
ESP_DOWN_AFTER = 2
MIN_RATE_LIMIT_WAIT = 1.0  # seconds, whatever Retry-After says

QUEUED, SENDING, SENT, FAILED, SKIPPED, UNKNOWN = "queued", "sending", "sent", "failed", "skipped", "unknown"

_AUDIENCE = {
    # One row per person however many audience topics they follow: the EXISTS is a
    # semi-join, and the primary key, which is the (mailing, person) pair, the last guard.
    "topics": """AND EXISTS (
        SELECT 1 FROM subscriptions_subscription sub
        WHERE sub.subscriber_id = s.id AND sub.ended_at IS NULL AND sub.topic_id = ANY(%(topics)s))""",
    "everyone": "",
}

# Rows go in key order (ORDER BY s.id), so every insert lands at the right edge of the
# one index there is. The id is models.delivery_id(mailing, subscriber).
_FAN_OUT = """
INSERT INTO subscriptions_delivery (id, mailing_id, subscriber_id, status, created_at, attempts, esp_message_id, error)
SELECT (%(mailing)s::bigint << %(bits)s) | s.id, %(mailing)s, s.id, 'queued', now(), 0, '', ''
FROM subscriptions_subscriber s
WHERE s.campaign_id = %(campaign)s AND s.status = 'active' AND NOT s.restricted
  AND s.id >= %(first)s AND s.id <= %(last)s
  {audience}
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_suppression x WHERE x.campaign_id = s.campaign_id AND x.email_hmac = s.email_hmac)
ORDER BY s.id
{on_conflict}
"""
# Only when an earlier attempt left rows (see mailing_fan_out): its speculative
# insertion costs about as much again as the insert itself.
_ON_CONFLICT = "ON CONFLICT (id) DO NOTHING"

_CLAIM = """
WITH claimed AS (
  UPDATE subscriptions_delivery d
  SET status = 'sending', claimed_at = now(), attempts = d.attempts + 1
  WHERE d.id = ANY(ARRAY(
    SELECT id FROM subscriptions_delivery
    WHERE id > %(after)s AND id < %(end)s AND status = 'queued'
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
  RETURNING d.id, d.subscriber_id
)
SELECT c.id, c.subscriber_id, coalesce(s.email, ''), coalesce(s.first_name, ''), coalesce(s.link_key, ''),
  coalesce(s.email_hmac, ''),
  s.id IS NOT NULL AND s.status = 'active' AND NOT s.restricted
  {audience}
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_suppression x WHERE x.campaign_id = s.campaign_id AND x.email_hmac = s.email_hmac)
FROM claimed c LEFT JOIN subscriptions_subscriber s ON s.id = c.subscriber_id
ORDER BY c.id
"""
# The LEFT JOIN: a delivery whose person is gone (erased between fan-out and claim)
# comes back ineligible and is marked skipped, rather than left `sending` to expire.

_MARK_ID_ONLY = """
UPDATE subscriptions_delivery d SET esp_message_id = v.esp_id
FROM unnest(%s::bigint[], %s::text[]) AS v(id, esp_id)
WHERE d.id = v.id AND d.esp_message_id = '' AND v.esp_id <> ''
"""

_MARK = """
UPDATE subscriptions_delivery d
SET status = v.status,
    sent_at = CASE WHEN v.status = 'sent' THEN now() ELSE d.sent_at END,
    claimed_at = CASE WHEN v.status = 'queued' THEN NULL ELSE d.claimed_at END,
    esp_message_id = v.esp_id,
    error = v.error
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(id, status, esp_id, error)
WHERE d.id = v.id AND d.status = 'sending'
RETURNING v.status
"""

# `sending` rows are found through their partial index; `queued` ones by walking the
# mailing's key range (a million rows in well under a second), once per task and sweep.
_COMPLETE = """
UPDATE subscriptions_mailing m SET status = 'sent', finished_at = now()
WHERE m.id = %(mailing)s AND m.status = 'sending'
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_delivery d WHERE d.id >= %(first)s AND d.id < %(end)s AND d.status = 'queued')
  AND NOT EXISTS (
    SELECT 1 FROM subscriptions_delivery d WHERE d.status = 'sending' AND d.id >= %(first)s AND d.id < %(end)s)
"""

_EXPIRE_CLAIMS = """
UPDATE subscriptions_delivery SET status = 'unknown', error = 'claim expired: the worker was lost mid-send'
WHERE status = 'sending' AND claimed_at < now() - make_interval(secs => %s)
RETURNING mailing_id
"""


@dataclass
class Claimed:
    delivery_id: int
    subscriber_id: int
    email: str
    first_name: str
    link_key: str
    email_hmac: str
    eligible: bool


@dataclass(frozen=True)
class Result:
    status: str
    esp_message_id: str = ""
    error: str = ""
    esp_down: bool = False
    refused: bool = False  # the server refused the address itself for good (transports.Refused)


@dataclass
class BatchOutcome:
    results: dict[int, Result] = field(default_factory=dict)
    stop: bool = False
    paused: str = ""  # why: a fault of our configuration (transports.Misconfigured) stopped the batch


def _audience(mailing: Mailing) -> tuple[str, list[int]]:
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
    audience, topic_ids = _audience(mailing)
    if connection.vendor != "postgresql":  # the demo's SQLite
        return portable.fan_out(mailing=mailing, topic_ids=topic_ids if audience == "topics" else None)
    before = Delivery.objects.of_mailing(mailing.pk).count()  # an earlier attempt's rows
    sql = _FAN_OUT.format(audience=_AUDIENCE[audience], on_conflict=_ON_CONFLICT if before else "")
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
        cursor.execute(
            "SELECT min(id), max(id) FROM subscriptions_subscriber WHERE campaign_id = %s AND status = 'active'",
            [campaign_id],
        )
        low, high = cursor.fetchone()
    if low is None:
        return []
    parts = settings.FANOUT_PARALLELISM if high - low + 1 >= settings.FANOUT_PARALLEL_FROM else 1
    edges = [low + (high - low + 1) * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(parts)]


def campaign_can_send(campaign: Campaign) -> bool:
    ended = campaign.ends_on is not None and campaign.ends_on < timezone.localdate()
    return campaign.status == Campaign.Status.ACTIVE and not ended


def mailing_start(*, mailing_id: int) -> bool:
    """Fan a due mailing out and set its send tasks going. Only one caller ever wins."""
    with transaction.atomic():
        mailing = (
            Mailing.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk=mailing_id, status=Mailing.Status.SCHEDULED, scheduled_at__lte=timezone.now())
            .first()
        )
        if mailing is None:
            return False
        if not campaign_can_send(mailing.campaign):
            Mailing.objects.filter(pk=mailing.pk).update(status=Mailing.Status.CANCELLED, finished_at=timezone.now())
            logger.warning("mailing %s cancelled: its campaign has ended", mailing.pk)
            return False
        # A mailer that cannot even be built (a missing package or setting) fails here,
        # before anyone is queued, rather than in every send task, leaving people unknown.
        mailers[BULK_MAILER].close()
        count = mailing_fan_out(mailing=mailing)
        now = timezone.now()
        status = Mailing.Status.SENDING if count else Mailing.Status.SENT
        Mailing.objects.filter(pk=mailing.pk).update(
            status=status, started_at=now, recipients_count=count, finished_at=None if count else now
        )
        if count:
            transaction.on_commit(lambda: enqueue_send_tasks(mailing_id=mailing.pk, count=settings.SEND_PARALLELISM))
    return True


def mailings_dispatch_due() -> int:
    """Start every mailing whose time has come (the beat calls this; no long countdowns)."""
    due = Mailing.objects.filter(status=Mailing.Status.SCHEDULED, scheduled_at__lte=timezone.now())
    started = 0
    for pk in due.order_by("scheduled_at").values_list("pk", flat=True)[:50]:
        try:
            started += mailing_start(mailing_id=pk)
        except SoftTimeLimitExceeded:  # the task is out of time: stop here, gracefully
            raise
        except Exception as error:
            # One mailing must not hold up those behind it.
            if _passes_by_itself(error):
                # Its start rolled back and it stays scheduled: the next beat tries it
                # again (a fan-out that failed part-way is completed then).
                logger.exception("mailing %s: starting it failed; the next beat takes it up", pk)
            else:
                _start_failed(pk, error)
    return started


def _passes_by_itself(error: Exception) -> bool:
    """A database that is away (or SQLite busy) comes back. SQLite also raises
    OperationalError for SQL it cannot run, which never passes."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    return connection.vendor == "postgresql" or "locked" in str(error)


def _start_failed(mailing_id: int, error: Exception) -> None:
    """A start that fails for a reason that will not pass by itself (configuration, a
    bug) goes back to draft with the reason where staff look (mailings.mailing_start_failed).
    If only queueing its send tasks failed, after commit, it had started: the sweeper
    queues them."""
    from subscriptions.services.mailings import mailing_start_failed

    if mailing_start_failed(mailing_id=mailing_id, error=error):
        logger.exception("mailing %s could not start; it is a draft again", mailing_id)
    else:
        logger.exception("mailing %s: after it started, queueing its send tasks failed; the sweeper does", mailing_id)


def enqueue_send_tasks(*, mailing_id: int, count: int, after: int = 0) -> None:
    """Queue `count` send tasks; a task handing over passes on where its claims got to."""
    cache.set(_heartbeat_key(mailing_id), 1, timeout=HEARTBEAT_SECONDS)
    for _ in range(count):
        enqueue("subscriptions.send_batch", mailing_id, after)


def _heartbeat_key(mailing_id: int) -> str:
    return f"tidings:sending:{mailing_id}"


def claim_size() -> int:
    # A batch must finish well inside its lease, whatever the rate, or the sweeper
    # would call it lost while it is still being sent.
    per_task_rate = settings.SEND_RATE_PER_SECOND / settings.SEND_PARALLELISM
    return max(1, min(settings.SEND_BATCH_SIZE, int(per_task_rate * settings.SEND_LEASE_SECONDS / 4)))


def deliveries_claim(*, mailing: Mailing, limit: int, after: int = 0) -> list[Claimed]:
    """Claim up to `limit` queued deliveries of the mailing, in key order, past the key
    `after` (0: from the mailing's first). Claims walk the primary key: starting where
    the last claim ended keeps that walk short however much is already sent."""
    audience, topic_ids = _audience(mailing)
    if connection.vendor != "postgresql":  # the demo's SQLite
        audience_ids = topic_ids if audience == "topics" else None
        return portable.claim(mailing=mailing, topic_ids=audience_ids, limit=limit, after=after)
    sql = _CLAIM.format(audience=_AUDIENCE[audience])
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
    if connection.vendor != "postgresql":  # the demo's SQLite
        return _mark_portable(mailing_id=mailing_id, campaign_id=campaign_id, results=results)
    ids = list(results)
    values = [results[i] for i in ids]
    with transaction.atomic():
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
        increments = {f"{status}_count": F(f"{status}_count") + n for status, n in counts.items() if status != QUEUED}
        if increments:
            Mailing.objects.filter(pk=mailing_id).update(**increments)
        stat_increment(campaign_id=campaign_id, metric="sends", count=counts[SENT])
    return counts


def _mark_portable(*, mailing_id: int, campaign_id: int, results: dict[int, Result]) -> Counter[str]:
    with transaction.atomic():
        counts = portable.mark(results)
        increments = {f"{status}_count": F(f"{status}_count") + n for status, n in counts.items() if status != QUEUED}
        if increments:
            Mailing.objects.filter(pk=mailing_id).update(**increments)
        stat_increment(campaign_id=campaign_id, metric="sends", count=counts[SENT])
    return counts


def mailing_complete_if_done(*, mailing_id: int) -> bool:
    """A mailing is sent when none of its deliveries is queued or sending."""
    if connection.vendor != "postgresql":  # the demo's SQLite
        return portable.complete_if_done(mailing_id=mailing_id)
    first, end = mailing_delivery_ids(mailing_id)
    with connection.cursor() as cursor:
        cursor.execute(_COMPLETE, {"mailing": mailing_id, "first": first, "end": end})
        return cursor.rowcount == 1


def _recipient(row: Claimed, links: dict[str, tuple[str, str]]) -> Recipient:
    def url(name: str, purpose: LinkPurpose) -> str:
        prefix, suffix = links[name]
        token = make_link_token_for(purpose=purpose, subscriber_id=row.subscriber_id, link_key=row.link_key)
        return f"{prefix}{token}{suffix}"

    personal = Personal(
        first_name=row.first_name,
        unsubscribe_url=url("unsubscribe", LinkPurpose.UNSUBSCRIBE),
        manage_url=url("manage", LinkPurpose.MANAGE),
    )
    return Recipient(delivery_id=row.delivery_id, address=envelope_address(row.email), personal=personal)


def batch_send(*, claimed: list[Claimed], transport: Transport, template: MimeTemplate) -> BatchOutcome:
    """Send a claimed batch through every fault the ESP may raise, one slot per person.

    Each call carries as many people as the transport takes and the bucket granted.
    Whatever a call leaves unfinished (rate limited, transient, not tried) stays at the
    front with its slot and goes again: a 429 waits as told, a transient fault backs off,
    up to SEND_RETRIES, and then fails the people it concerns. A fault of our
    configuration (transports.Misconfigured, or an exception that is no SendFault)
    fails no one: whoever is not done goes back to the queue and the mailing pauses.
    """
    outcome = BatchOutcome()
    pending = _outgoing(claimed, template, outcome)
    slots = 0
    down_in_a_row = 0
    retries = 0
    waited = 0.0
    largest_call = transport.max_recipients
    while pending:
        if slots == 0:
            try:
                slots = ratelimit_take(mailer=transport.name, count=min(len(pending), settings.SEND_RATE_BURST))
            except RateLimitTimeout:
                outcome.stop = True
                _give_back(outcome, pending, "no send slot in time")
                break
        call = pending[: min(slots, largest_call or slots)]
        outcomes = _send_call(transport, call)
        finished, faulted = _settle(call, outcomes)
        misconfigured = _misconfigured(call[len(finished) :], outcomes)
        if not finished and not faulted and misconfigured is None:
            # Every transport answers for at least the first person; looping would spin.
            raise RuntimeError(f"{transport.name} answered for nobody in a call of {len(call)}")
        pending = pending[len(finished) :]
        slots -= len(finished)
        for item, result in finished:
            outcome.results[item.recipient.delivery_id] = result
            down_in_a_row = 0
        if finished:
            retries, waited = 0, 0.0
        if misconfigured is not None:
            # Every message would meet it: fail no one, pause (see _mailing_pause).
            outcome.stop, outcome.paused = True, str(misconfigured)
            _give_back(outcome, pending, f"sending paused: {misconfigured}")
            break
        if not faulted:
            continue
        fault = outcomes[faulted[0].recipient.delivery_id]
        if isinstance(fault, RateLimited):
            # At least a second, so "Retry-After: 0" (or a date gone by) cannot spin.
            wait = max(fault.retry_after or 0.0, MIN_RATE_LIMIT_WAIT)
            ratelimit_pause(mailer=transport.name, seconds=wait)
            if waited + wait <= settings.SEND_LEASE_SECONDS / 4:
                waited += wait
                pause(wait)
                continue
            # A longer wait than a lease allows: nothing of the rest was sent, so give it
            # all back and stop; the paused bucket holds every worker off meanwhile.
            outcome.stop = True
            _give_back(outcome, pending, "rate limited by the ESP")
            break
        if retries < settings.SEND_RETRIES:
            pause(backoff_seconds(retries, base=settings.SEND_RETRY_BACKOFF_SECONDS))
            retries += 1
            continue
        if len(faulted) > 1:
            # Nothing in the call was sent. Go on one person per call: a fault of the
            # ESP then stops the batch after ESP_DOWN_AFTER people, as it does for
            # one-message transports, and a fault of one big payload fails nobody else.
            largest_call, retries = 1, 0
            continue
        outcome.results[faulted[0].recipient.delivery_id] = Result(FAILED, error=str(fault), esp_down=True)
        down_in_a_row += 1
        pending = pending[1:]
        slots -= 1
        retries, waited = 0, 0.0
        if down_in_a_row >= ESP_DOWN_AFTER:
            # The ESP is down, not these addresses: stop failing people and rest.
            outcome.stop = True
            _give_back(outcome, pending, "the ESP looked down; sent again later")
            break
    return outcome


def _outgoing(claimed: list[Claimed], template: MimeTemplate, outcome: BatchOutcome) -> list[Outgoing]:
    """The claimed people to send to, in order; the rest get their result in `outcome`."""
    pending: list[Outgoing] = []
    links = {name: link_pattern(name=name) for name in ("unsubscribe", "manage")}
    for row in claimed:
        if not row.eligible:
            outcome.results[row.delivery_id] = Result(SKIPPED, error="no longer subscribed")
            continue
        try:
            recipient = _recipient(row, links)
        except UnsendableAddress as error:
            outcome.results[row.delivery_id] = Result(FAILED, error=str(error))
            continue
        pending.append(Outgoing(recipient=recipient, message_id=template.message_id(row.delivery_id)))
    return pending


def _send_call(transport: Transport, call: list[Outgoing]) -> Outcomes:
    """One transport call. An exception that is no SendFault (a bad mailer option, a bug
    of ours) pauses the mailing with everyone in the call given back, not failed.

    Safe enough, because such exceptions come from our side before the ESP could act:
    building the payload, an option the backend or requests cannot use (issue 16's
    string timeout raised before connecting). Every failure the ESP itself answers is
    a SendFault (transports.anymail_fault). The rare ambiguity: a backend that raises
    something else while reading a 2xx answer had the message accepted, and those in
    the call are sent again on resuming; a duplicate, where failing them all, or
    leaving them unknown, would make everyone miss the mailing for one bad setting.
    One-message transports answer such an exception per person (transports.send_each),
    so whoever was sent before it in the call keeps their answer."""
    try:
        return transport.send_many(call)
    except SoftTimeLimitExceeded:  # the task is out of time: its claims expire as for a lost worker
        raise
    except Exception as error:  # noqa: BLE001 - see above
        fault = unexpected_fault(error)
        return {item.recipient.delivery_id: fault for item in call}


def _misconfigured(unfinished: list[Outgoing], outcomes: Outcomes) -> Misconfigured | None:
    """The fault that stopped the call, when it is one of our configuration."""
    answer = outcomes.get(unfinished[0].recipient.delivery_id) if unfinished else None
    return answer if isinstance(answer, Misconfigured) else None


def _settle(call: list[Outgoing], outcomes: Outcomes) -> tuple[list[tuple[Outgoing, Result]], list[Outgoing]]:
    """Split a call's answer: the people done with (in order), then those its ESP fault concerns.

    A transport answers in order and stops at a rate-limit or transient fault, so the
    done come first; whoever follows them unanswered was not tried.
    """
    finished: list[tuple[Outgoing, Result]] = []
    for item in call:
        answer = outcomes.get(item.recipient.delivery_id)
        if isinstance(answer, str):
            # Stored as webhooks are matched (reconcile._find): without angle brackets.
            finished.append((item, Result(SENT, esp_message_id=answer.strip("<>")[:200])))
        elif isinstance(answer, Refused):
            finished.append((item, Result(FAILED, error=str(answer), refused=True)))
        elif isinstance(answer, Permanent):
            finished.append((item, Result(FAILED, error=str(answer))))
        elif isinstance(answer, Ambiguous):
            finished.append((item, Result(UNKNOWN, error=str(answer))))
        else:
            break
    rest = call[len(finished) :]
    faulted = list(
        takewhile(lambda item: isinstance(outcomes.get(item.recipient.delivery_id), RateLimited | Transient), rest)
    )
    return finished, faulted


def _give_back(outcome: BatchOutcome, items: list[Outgoing], reason: str) -> None:
    for item in items:
        outcome.results[item.recipient.delivery_id] = Result(QUEUED, error=reason)


def mailing_send_batches(*, mailing_id: int, after: int = 0, seconds: float = TASK_SECONDS) -> Counter[str]:
    """Claim, send and mark batches of one mailing until none is left or time is up.

    Claims go on from the key the last one ended at (`after`, handed over between
    tasks). When nothing is left past it, one claim from the mailing's first key picks
    up what was given back behind it (a batch another task stopped) before giving up.
    """
    mailing = Mailing.objects.select_related("campaign").get(pk=mailing_id)
    totals: Counter[str] = Counter()
    if mailing.status != Mailing.Status.SENDING:
        return totals
    if not campaign_can_send(mailing.campaign):
        mailing_stop(mailing=mailing, reason="the campaign has ended")
        return totals
    template = MimeTemplate(compiled=mailing_compile(mailing=mailing), campaign=mailing.campaign)
    transport = transport_for(alias=BULK_MAILER, template=template)
    deadline = time.monotonic() + seconds
    more = False
    try:
        while True:
            cache.set(_heartbeat_key(mailing_id), 1, timeout=HEARTBEAT_SECONDS)
            if Mailing.objects.filter(pk=mailing_id, status=Mailing.Status.SENDING).count() == 0:
                break  # cancelled meanwhile
            claimed = deliveries_claim(mailing=mailing, limit=claim_size(), after=after)
            if not claimed and after:
                after = 0
                claimed = deliveries_claim(mailing=mailing, limit=claim_size())
            if not claimed:
                break
            after = claimed[-1].delivery_id
            outcome = batch_send(claimed=claimed, transport=transport, template=template)
            counts = deliveries_mark(mailing_id=mailing_id, campaign_id=mailing.campaign_id, results=outcome.results)
            totals += counts
            _withdraw_refused(claimed, outcome.results)
            _pause_or_resume(mailing=mailing, paused=outcome.paused, sent=counts[SENT])
            if outcome.stop:
                cache.set(_heartbeat_key(mailing_id), 1, timeout=ESP_DOWN_REST_SECONDS)
                return totals
            if time.monotonic() > deadline:
                more = True
                break
    finally:
        transport.close()
    if more:
        enqueue_send_tasks(mailing_id=mailing_id, count=1, after=after)
    else:
        mailing_complete_if_done(mailing_id=mailing_id)
    return totals


def _pause_or_resume(*, mailing: Mailing, paused: str, sent: int) -> None:
    """A batch stopped on our configuration pauses the mailing; one that sent someone ends a pause."""
    if paused:
        _mailing_pause(mailing=mailing, reason=paused)
    elif sent:
        _mailing_resume(mailing=mailing)


def _mailing_pause(*, mailing: Mailing, reason: str) -> None:
    """Say why sending stopped where staff look (`start_error`, shown on the mailing),
    once in the audit trail, and in an ERROR line on every attempt. The mailing stays
    `sending` with its people queued: never `sent` while anyone is (_COMPLETE), and the
    sweeper restarts it once its rest (ESP_DOWN_REST_SECONDS) is over."""
    advice = "Fix the mailer settings; sending resumes by itself."
    shown = f"Sending paused: {reason.rstrip('.')}. {advice}"
    if len(shown) > 300:  # start_error's length: keep the advice, cut the reason
        shown = f"Sending paused: {reason[:220]}… {advice}"
    logger.error("mailing %s: sending paused, no one failed: %s", mailing.pk, reason)
    sending_now = Mailing.objects.filter(pk=mailing.pk, status=Mailing.Status.SENDING)
    with transaction.atomic():
        # Audited when it pauses, not on every attempt while paused (one a minute); an
        # ESP's answer may differ per request, so the text shown is the latest.
        newly = sending_now.filter(start_error="").update(start_error=shown)
        if not newly:
            sending_now.update(start_error=shown)
        else:
            audit_record(
                actor=None, action="mailing_paused", campaign_id=mailing.campaign_id,
                target_type="mailing", target_id=mailing.pk, reason=reason,
            )  # fmt: skip


def _mailing_resume(*, mailing: Mailing) -> None:
    """A batch went out: whatever paused the mailing is over (a cheap no-op otherwise)."""
    with transaction.atomic():
        if Mailing.objects.filter(pk=mailing.pk).exclude(start_error="").update(start_error=""):
            logger.info("mailing %s: sending resumed", mailing.pk)
            audit_record(
                actor=None, action="mailing_resumed", campaign_id=mailing.campaign_id,
                target_type="mailing", target_id=mailing.pk,
            )  # fmt: skip


def _withdraw_refused(claimed: list[Claimed], results: dict[int, Result]) -> None:
    """An address the receiving server refused for good has bounced: withdraw, erase and
    suppress the person as an ESP's hard bounce does (services.webhooks). Logged by
    delivery id, never by address."""
    for row in claimed:
        result = results.get(row.delivery_id)
        if result is None or not result.refused:
            continue
        logger.info("delivery %s: %s; withdrawn as a hard bounce", row.delivery_id, result.error)
        subscriber_withdraw(
            subscriber_id=row.subscriber_id, reason=WithdrawalReason.HARD_BOUNCE, source=ConsentEvent.Source.ESP
        )


def mailing_stop(*, mailing: Mailing, reason: str, status: str = Mailing.Status.CANCELLED) -> int:
    """Skip whatever is still queued; batches already in flight finish and are counted."""
    with transaction.atomic():
        skipped = (
            Delivery.objects.of_mailing(mailing.pk).filter(status=QUEUED).update(status=SKIPPED, error=reason[:200])
        )
        Mailing.objects.filter(pk=mailing.pk).update(
            status=status, finished_at=timezone.now(), skipped_count=F("skipped_count") + skipped
        )
    return skipped


def deliveries_sweep() -> dict[str, int]:
    """Expire lost claims to `unknown`, restart mailings whose tasks vanished, finish the done."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor != "postgresql":  # the demo's SQLite
            expired = portable.expire_claims(lease_seconds=settings.SEND_LEASE_SECONDS)
        else:
            cursor.execute(_EXPIRE_CLAIMS, [settings.SEND_LEASE_SECONDS])
            expired = Counter(row[0] for row in cursor.fetchall())
        for mailing_id, count in expired.items():
            Mailing.objects.filter(pk=mailing_id).update(unknown_count=F("unknown_count") + count)
    restarted = completed = 0
    for mailing_id in Mailing.objects.filter(status=Mailing.Status.SENDING).values_list("pk", flat=True):
        if mailing_complete_if_done(mailing_id=mailing_id):
            completed += 1
        elif (
            cache.get(_heartbeat_key(mailing_id)) is None
            and Delivery.objects.of_mailing(mailing_id).filter(status=QUEUED).exists()
        ):
            enqueue_send_tasks(mailing_id=mailing_id, count=settings.SEND_PARALLELISM)
            restarted += 1
    return {"expired": sum(expired.values()), "restarted": restarted, "completed": completed}
