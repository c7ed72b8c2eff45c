"""Double opt-in: a sign-up request, its record and confirmation email, and the confirmation.

Nothing a person asks for on a form takes effect until the inbox owner confirms: a
new address becomes active, and an active address gains topics (or a corrected
name), only through the link mailed to it. Every path does the same visible thing,
so the page never reveals whether an address was new, pending, active or gone.

A request is accepted in the web process (validated, rate-limited, appended to the
intake stream: subscriptions/services/signup/stream.py) and recorded a moment later by a worker
(signup_record, driven by services/signup_intake.py).
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from subscriptions import abuse, selectors
from subscriptions.addresses import email_hmac, normalise_email
from subscriptions.models import (
    Campaign,
    ConsentEvent,
    PrivacyNotice,
    SignupForm,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
)
from subscriptions.services.enqueue import enqueue, enqueue_on_commit
from subscriptions.services.signup import stream
from subscriptions.services.stats import stat_increment

logger = logging.getLogger(__name__)


class RequestVariant(StrEnum):
    NEW = "new"  # confirm a new (or pending, or withdrawn) subscription
    ADD_TOPICS = "add_topics"  # an active subscriber asked for more
    ALREADY = "already"  # an active subscriber asked for nothing new: remind them


class CampaignClosed(Exception):
    """The campaign has ended: it takes no sign-ups and confirms none."""


# One encoder for every entry: json.dumps() with separators builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class SignupEntry:
    """One accepted sign-up on its way from the request to its record: ids and the
    validated values, as the intake stream carries it (JSON)."""

    form_id: int
    privacy_notice_id: int | None
    email: str
    first_name: str
    topic_ids: list[int]
    attributes: dict[str, Any]
    source: str
    requested_at: datetime

    def dumps(self) -> str:
        values = {**self.__dict__, "requested_at": self.requested_at.isoformat()}
        return _COMPACT_JSON.encode(values)

    @classmethod
    def loads(cls, payload: str) -> "SignupEntry":
        values = json.loads(payload)
        values["requested_at"] = datetime.fromisoformat(values["requested_at"])
        return cls(**values)


def signup_request(
    *,
    form: SignupForm,
    email: str,
    first_name: str,
    topics: list[Topic],
    attributes: dict[str, Any],
    source: ConsentEvent.Source,
    client_ip: str | None = None,
    privacy_notice: PrivacyNotice | None = None,
) -> None:
    """Accept a sign-up, or raise abuse.RateLimited (having changed nothing) when the
    client or the address is over a limit, or CampaignClosed.

    Accepting admits the request against the limits and appends it to the intake
    stream in one Redis step; a worker records it (signup_record) a moment later, so
    the request never waits on PostgreSQL. Without Redis it is recorded here.

    `privacy_notice` is the campaign's current notice when the caller already has it
    (the sign-up page reads it with the form); otherwise it is looked up here."""
    campaign = form.campaign
    if not campaign.is_active:
        raise CampaignClosed
    email = normalise_email(email)
    if privacy_notice is None:  # a caller without a cached notice (or a campaign without one)
        privacy_notice = selectors.privacy_notice_current(campaign=campaign)
    entry = SignupEntry(
        form_id=form.pk,
        privacy_notice_id=privacy_notice.pk if privacy_notice else None,
        email=email,
        first_name=first_name,
        topic_ids=[topic.pk for topic in topics],
        attributes=attributes,
        source=str(source),
        requested_at=timezone.now(),
    )
    if not stream.enabled():
        abuse.claim_confirmation_email(campaign_id=campaign.pk, email=email, ip=client_ip)
        signup_record(entry, form=form)
        return
    append = stream.append_for(entry.dumps())
    if abuse.claim_confirmation_email(campaign_id=campaign.pk, email=email, ip=client_ip, append=append):
        try:
            enqueue("subscriptions.drain_signups")
        except Exception:  # the sign-up is accepted: beat's drain records it
            logger.exception("Could not queue a sign-up drain; the minutely drain will record the sign-up")


def signup_record(entry: SignupEntry, *, form: SignupForm, intake_id: str | None = None) -> bool:
    """Record an accepted sign-up: the pending subscriber (or the existing one, locked),
    a requested ConsentEvent dated when the request came in, the day's count, and the
    confirmation email queued after commit. `form` is the entry's form.

    Returns False, writing nothing, when the campaign has ended since (checked under a
    share lock on the campaign row, so an ending that is under way waits for this record
    and then erases it too), or when the intake entry `intake_id` was recorded already
    (a reader died before deleting it); its confirmation is then queued again, which
    mails nobody twice."""
    with transaction.atomic():
        _commit_without_waiting_for_disk()
        if not _campaign_active_locked(form.campaign_id):
            return False
        subscriber, created = _subscriber_locked(
            campaign=form.campaign, email=entry.email, first_name=entry.first_name, attributes=entry.attributes
        )
        if not created and intake_id is not None:
            recorded = _request_recorded(subscriber, intake_id)
            if recorded is not None:
                enqueue_on_commit("subscriptions.send_signup_confirmation", recorded)
                return False
        variant = _variant(subscriber, entry.topic_ids)
        if not created and subscriber.status == Subscriber.Status.PENDING and not subscriber.legal_hold:
            # Unconfirmed details may be replaced by anyone; they only matter once confirmed.
            # Anyone else's details (active, withdrawn awaiting erasure, held) change only
            # when the inbox confirms: confirmation applies what this request carries.
            subscriber.first_name, subscriber.attributes = entry.first_name, entry.attributes
            subscriber.save(update_fields=["first_name", "attributes"])
        details: dict[str, Any] = {
            "variant": str(variant),
            "first_name": entry.first_name,
            "attributes": entry.attributes,
            **({"intake_id": intake_id} if intake_id is not None else {}),
        }
        event = ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.REQUESTED,
            source=entry.source,
            created_at=entry.requested_at,
            form=form,
            privacy_notice_id=entry.privacy_notice_id,
            topic_ids=entry.topic_ids,
            details=details,
        )
        day = timezone.localdate(entry.requested_at)
        stat_increment(campaign_id=form.campaign_id, metric="signups", day=day)
        enqueue_on_commit("subscriptions.send_signup_confirmation", event.pk)
    return True


def _campaign_active_locked(campaign_id: int) -> bool:
    if connection.vendor != "postgresql":  # SQLite, the demo, serialises writers anyway
        return Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.ACTIVE).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM subscriptions_campaign WHERE id = %s FOR SHARE", [campaign_id])
        row = cursor.fetchone()
    return row is not None and row[0] == Campaign.Status.ACTIVE


def _request_recorded(subscriber: Subscriber, intake_id: str) -> int | None:
    """The id of the request this intake entry already made, if it did."""
    return (
        subscriber.consent_events.filter(kind=ConsentEvent.Kind.REQUESTED, details__intake_id=intake_id)
        .values_list("pk", flat=True)
        .first()
    )


def _subscriber_locked(
    *, campaign: Campaign, email: str, first_name: str, attributes: dict[str, Any]
) -> tuple[Subscriber, bool]:
    """The campaign's subscriber for `email`, row-locked until commit, created pending
    when new. Returns (subscriber, created).

    A new address costs one statement: INSERT … ON CONFLICT DO NOTHING needs no
    savepoint, and a concurrent request for the same address waits on our uncommitted
    row, then finds it and locks it below. The lookup matches the unique index on
    LOWER(email); `email__iexact` compiles to UPPER() and scans the whole campaign."""
    while True:
        subscriber = Subscriber(campaign=campaign, email=email, first_name=first_name, attributes=attributes)
        if _insert_unless_taken(subscriber):
            return subscriber, True
        existing = (
            Subscriber.objects.select_for_update()
            .alias(email_lower=Lower("email"))
            .filter(campaign=campaign, email_lower=Lower(Value(email)))
            .first()
        )
        if existing is not None:
            return existing, False
        # The row that blocked the insert was erased (or rolled back) since: try again.


def _insert_unless_taken(subscriber: Subscriber) -> bool:
    """Insert `subscriber` as Model.save() would, or do nothing when the address is
    taken. Returns True, with the primary key set, when the row was inserted."""
    # Subscriber.save() keeps the keyed hash in step with the address; this bypasses it.
    subscriber.email_hmac = email_hmac(subscriber.email)
    meta = Subscriber._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [field.get_db_prep_save(field.pre_save(subscriber, True), connection) for field in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Names come from the model's metadata and values are parameters. The only unique
    # index a new row can collide on is the address's (LOWER(email), campaign).
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
        f" ON CONFLICT DO NOTHING RETURNING {quote(str(meta.pk.column))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    subscriber.pk = row[0]
    subscriber._state.adding = False
    subscriber._state.db = connection.alias
    return True


def _commit_without_waiting_for_disk() -> None:
    """A sign-up request need not wait for its WAL flush: a database crash can lose at
    most the last fraction of a second of unconfirmed requests (the person signs up
    again), and never corrupts anything. It shortens the time the campaign's daily
    counter row stays locked, which otherwise serialises concurrent sign-ups."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _variant(subscriber: Subscriber, topic_ids: list[int]) -> RequestVariant:
    if not subscriber.is_active:
        return RequestVariant.NEW
    open_ids = set(subscriber.subscriptions.filter(ended_at__isnull=True).values_list("topic_id", flat=True))
    return RequestVariant.ADD_TOPICS if set(topic_ids) - open_ids else RequestVariant.ALREADY


def signup_confirm(*, subscriber_id: int, event_id: int) -> Subscriber | None:
    """Apply a confirmed request. Returns the subscriber, or None when the request is
    unknown, was for someone else, or no longer applies. Confirming twice (even
    concurrently: the row lock serialises it) records one confirmation."""
    now = timezone.now()
    with transaction.atomic():
        subscriber = selectors.subscriber_locked(subscriber_id=subscriber_id)
        if subscriber is None or not subscriber.campaign.is_active:
            return None
        request = subscriber.consent_events.filter(pk=event_id, kind=ConsentEvent.Kind.REQUESTED).first()
        if request is None:
            return None
        if subscriber.consent_events.filter(kind=ConsentEvent.Kind.CONFIRMED, details__request_id=event_id).exists():
            return subscriber if subscriber.is_active else None
        newly_active = not subscriber.is_active
        _activate(subscriber, request, now)
        topic_ids = _open_subscriptions(subscriber, request)
        ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.CONFIRMED,
            source=ConsentEvent.Source.EMAIL,
            form=request.form,
            privacy_notice=request.privacy_notice,
            topic_ids=topic_ids,
            details={"request_id": request.pk},
        )
        _count_confirmation(subscriber, topic_ids, newly_active)
        enqueue_on_commit("subscriptions.send_welcome", subscriber.pk, topic_ids)
    return subscriber


def _activate(subscriber: Subscriber, request: ConsentEvent, now: Any) -> None:
    subscriber.first_name = request.details.get("first_name", subscriber.first_name)
    subscriber.attributes = {**subscriber.attributes, **request.details.get("attributes", {})}
    if not subscriber.is_active:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.withdrawn_at = None
        subscriber.erasure_due_at = None
    subscriber.last_confirmed_at = now
    subscriber.save()
    # A fresh double opt-in is the one thing that lifts an earlier suppression.
    Suppression.objects.filter(campaign_id=subscriber.campaign_id, email_hmac=email_hmac(subscriber.email)).delete()


def _open_subscriptions(subscriber: Subscriber, request: ConsentEvent) -> list[int]:
    wanted = Topic.objects.filter(campaign_id=subscriber.campaign_id, pk__in=request.topic_ids, archived=False)
    open_ids = set(subscriber.subscriptions.filter(ended_at__isnull=True).values_list("topic_id", flat=True))
    new_ids = [topic.pk for topic in wanted if topic.pk not in open_ids]
    source = request.source if request.source in Subscription.Source.values else Subscription.Source.PAGE
    Subscription.objects.bulk_create(
        [Subscription(subscriber=subscriber, topic_id=topic_id, source=source) for topic_id in new_ids],
        ignore_conflicts=True,
    )
    return new_ids


def _count_confirmation(subscriber: Subscriber, topic_ids: list[int], newly_active: bool) -> None:
    if newly_active:
        stat_increment(campaign_id=subscriber.campaign_id, metric="confirmations")
    for topic_id in topic_ids:
        stat_increment(campaign_id=subscriber.campaign_id, topic_id=topic_id, metric="confirmations")
