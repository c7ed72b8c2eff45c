"""signup_record: an accepted sign-up written down (by the drain, drain.py, or without
Redis by the request itself): the pending subscriber, or the existing one locked, the
`requested` ConsentEvent, the day's count, and the confirmation email queued after commit."""

from enum import StrEnum
from typing import Any

from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import Campaign, ConsentEvent, SignupForm, Subscriber
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.signup.entry import SignupEntry
from subscriptions.services.stats import stat_increment


class RequestVariant(StrEnum):
    NEW = "new"  # confirm a new (or pending, or withdrawn) subscription
    ADD_TOPICS = "add_topics"  # an active subscriber asked for more
    ALREADY = "already"  # an active subscriber asked for nothing new: remind them


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
        event = _request_create(subscriber, entry, form=form, created=created, intake_id=intake_id)
        day = timezone.localdate(entry.requested_at)
        stat_increment(campaign_id=form.campaign_id, metric="signups", day=day)
        enqueue_on_commit("subscriptions.send_signup_confirmation", event.pk)
    return True


def _request_create(
    subscriber: Subscriber, entry: SignupEntry, *, form: SignupForm, created: bool, intake_id: str | None
) -> ConsentEvent:
    """The `requested` ConsentEvent for `entry`, which carries what confirming applies."""
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
    return ConsentEvent.objects.create(
        subscriber=subscriber,
        kind=ConsentEvent.Kind.REQUESTED,
        source=entry.source,
        created_at=entry.requested_at,
        form=form,
        privacy_notice_id=entry.privacy_notice_id,
        topic_ids=entry.topic_ids,
        details=details,
    )


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
