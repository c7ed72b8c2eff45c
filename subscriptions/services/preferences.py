"""The preference centre: what a person hears about, their details, their address.

The manage link is the person's key: it was mailed to them, so whoever holds it
speaks for that inbox. Changes take effect at once and each writes a ConsentEvent
"changed". The exception is a new address, which only its own inbox can confirm.
Unticking every topic is leaving: it withdraws the person and erases their data.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from subscriptions import abuse
from subscriptions.addresses import email_hmac, normalise_email
from subscriptions.models import Campaign, ConsentEvent, Subscriber, Subscription, Suppression, Topic
from subscriptions.models.subscribers import new_link_key
from subscriptions.services.enqueue import enqueue_on_commit
from subscriptions.services.erasure import personal_data_delete
from subscriptions.services.stats import stat_increment
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw

EMAIL_CHANGE_REQUESTED = "email_change_requested"
EMAIL_CHANGED = "email_changed"


@dataclass(frozen=True)
class PreferencesChange:
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # names of the details corrected
    withdrawn: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.started or self.ended or self.details or self.withdrawn)


class EmailChangeOutcome(StrEnum):
    CHANGED = "changed"
    ALREADY = "already"  # this link was used before: the address is already switched
    TAKEN = "taken"  # another subscriber of the campaign holds the new address
    GONE = "gone"  # the request, or the person, no longer exists


def topics_offered(*, campaign: Campaign) -> list[Topic]:
    return list(campaign.topics.filter(archived=False).order_by("position", "name"))


def topic_ids_open(*, subscriber: Subscriber) -> set[int]:
    return set(subscriber.subscriptions.filter(ended_at__isnull=True).values_list("topic_id", flat=True))


def preferences_update(
    *, subscriber_id: int, topic_ids: Collection[int], first_name: str, attributes: dict[str, Any]
) -> PreferencesChange | None:
    """Apply what the preference centre sent. Returns what changed, or None when the
    person is no longer active (nothing is changed then).

    Only topics the campaign still offers are compared, so a subscription to an
    archived topic is neither ended nor reopened by a form that cannot show it.
    An empty choice withdraws the person from everything.
    """
    if not topic_ids:
        withdrawn = subscriber_withdraw(
            subscriber_id=subscriber_id, reason=WithdrawalReason.PREFERENCES, source=ConsentEvent.Source.PREFERENCES
        )
        return PreferencesChange(withdrawn=True) if withdrawn else None
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None or not subscriber.is_active:
            return None
        offered = {topic.pk for topic in topics_offered(campaign=subscriber.campaign)}
        wanted = set(topic_ids) & offered
        current = topic_ids_open(subscriber=subscriber) & offered
        change = PreferencesChange(
            started=sorted(wanted - current),
            ended=sorted(current - wanted),
            details=_correct_details(subscriber, first_name, attributes),
        )
        if not change.changed:
            return change
        _start_and_end(subscriber, change, now)
        ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.CHANGED,
            source=ConsentEvent.Source.PREFERENCES,
            topic_ids=sorted(topic_ids_open(subscriber=subscriber)),
            details={"started": change.started, "ended": change.ended, "corrected": change.details},
        )
    return change


def _correct_details(subscriber: Subscriber, first_name: str, attributes: dict[str, Any]) -> list[str]:
    """Set the corrected name and attributes; return the names of those that changed.

    Attributes the campaign no longer declares are dropped, never kept or added.
    """
    declared = {spec["name"] for spec in subscriber.campaign.extra_fields}
    new_attributes = {name: value for name, value in attributes.items() if name in declared and value not in ("", [])}
    corrected = ["first_name"] if first_name != subscriber.first_name else []
    corrected += sorted(
        name for name in set(subscriber.attributes) | set(new_attributes)
        if subscriber.attributes.get(name) != new_attributes.get(name)
    )  # fmt: skip
    if corrected:
        subscriber.first_name, subscriber.attributes = first_name, new_attributes
        subscriber.save(update_fields=["first_name", "attributes"])
    return corrected


def _start_and_end(subscriber: Subscriber, change: PreferencesChange, now: Any) -> None:
    Subscription.objects.filter(subscriber=subscriber, topic_id__in=change.ended, ended_at__isnull=True).update(
        ended_at=now, ended_reason=str(WithdrawalReason.PREFERENCES)
    )
    source = Subscription.Source.PREFERENCES
    new_rows = [Subscription(subscriber=subscriber, topic_id=pk, source=source) for pk in change.started]
    Subscription.objects.bulk_create(new_rows, ignore_conflicts=True)
    for topic_id in change.started:
        stat_increment(campaign_id=subscriber.campaign_id, topic_id=topic_id, metric="confirmations")
    for topic_id in change.ended:
        stat_increment(
            campaign_id=subscriber.campaign_id, topic_id=topic_id, metric="withdrawals", reason="preferences"
        )


def email_change_request(*, subscriber_id: int, new_email: str, client_ip: str | None = None) -> None:
    """Ask the new address to confirm itself. Nothing changes until it does.

    Raises abuse.RateLimited (writing nothing) when the new address, or the client,
    has had enough for now: the form must not become a way to mail strangers.
    """
    new_email = normalise_email(new_email)
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.ACTIVE).first()
    if subscriber is None or new_email.lower() == subscriber.email.lower():
        return
    abuse.claim_confirmation_email(campaign_id=subscriber.campaign_id, email=new_email, ip=client_ip)
    with transaction.atomic():
        # One change waits at a time: an earlier request's address is forgotten, and
        # its link stops working.
        subscriber.consent_events.filter(details__change=EMAIL_CHANGE_REQUESTED, details__has_key="new_email").update(
            details={"change": EMAIL_CHANGE_REQUESTED, "superseded": True}
        )
        event = ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.CHANGED,
            source=ConsentEvent.Source.PREFERENCES,
            topic_ids=sorted(topic_ids_open(subscriber=subscriber)),
            # The only place the new address waits; erased with the person.
            details={"change": EMAIL_CHANGE_REQUESTED, "new_email": new_email},
        )
        enqueue_on_commit("subscriptions.send_email_change_confirmation", event.pk)


def email_change_confirm(*, subscriber_id: int, event_id: int) -> EmailChangeOutcome:
    """Switch to the new address, once, and tell the old one.

    The link key is rotated, so links in mail sent to the old address stop working.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None or not subscriber.is_active:
            return EmailChangeOutcome.GONE
        request = subscriber.consent_events.filter(pk=event_id, details__change=EMAIL_CHANGE_REQUESTED).first()
        if request is None:
            return EmailChangeOutcome.GONE
        if request.details.get("applied"):
            return EmailChangeOutcome.ALREADY
        if "new_email" not in request.details:
            return EmailChangeOutcome.GONE
        new_email = request.details["new_email"]
        if not _free_for(subscriber, new_email):
            return EmailChangeOutcome.TAKEN
        old_email = subscriber.email
        subscriber.email, subscriber.link_key = new_email, new_link_key()
        subscriber.save(update_fields=["email", "link_key"])
        # Confirming from the inbox is a fresh opt-in for that address.
        Suppression.objects.filter(campaign_id=subscriber.campaign_id, email_hmac=email_hmac(new_email)).delete()
        request.details = {"change": EMAIL_CHANGE_REQUESTED, "applied": True}
        request.save(update_fields=["details"])
        notice = ConsentEvent.objects.create(
            subscriber=subscriber,
            kind=ConsentEvent.Kind.CHANGED,
            source=ConsentEvent.Source.EMAIL,
            topic_ids=sorted(topic_ids_open(subscriber=subscriber)),
            # Kept only until the notice to the old address is sent (see preference_emails).
            details={"change": EMAIL_CHANGED, "request_id": request.pk, "notify": old_email},
        )
        enqueue_on_commit("subscriptions.send_email_changed_notice", notice.pk)
    return EmailChangeOutcome.CHANGED


def email_change_in_force(*, subscriber: Subscriber, request_id: int) -> bool:
    """True when the subscriber's current address is the one this request asked for,
    i.e. no later change has been confirmed since."""
    latest = subscriber.consent_events.filter(details__change=EMAIL_CHANGED).order_by("-pk").first()
    return latest is not None and latest.details.get("request_id") == request_id


def _free_for(subscriber: Subscriber, new_email: str) -> bool:
    """True when no one else in the campaign holds the address. An unconfirmed
    sign-up for it is dropped: the inbox owner has just confirmed this instead."""
    others = Subscriber.objects.filter(campaign_id=subscriber.campaign_id, email__iexact=new_email).exclude(
        pk=subscriber.pk
    )
    for other in others.select_for_update():
        if other.status != Subscriber.Status.PENDING or other.legal_hold:
            return False
        # No suppression and no count: an unconfirmed sign-up never consented.
        personal_data_delete(campaign_id=other.campaign_id, subscriber_ids=[other.pk])
    return True


def manage_link_request(*, campaign: Campaign, email: str, client_ip: str | None = None) -> None:
    """Queue the manage link for an address; the task mails it only if it is subscribed.

    The caller shows the same page either way. The request does the same work whether
    or not the address is known (the same limits, the same task queued), so neither
    the page nor its timing tells. Every request passes the limits (per client, and one
    email per address per window of minutes: abuse.claim_manage_link_email, kept apart
    from the sign-up's so that a stranger cannot lock anyone out); a refusal
    (abuse.RateLimited) tells nothing either. The task gets the keyed hash, never the
    address.
    """
    email = normalise_email(email)
    abuse.claim_manage_link_email(campaign_id=campaign.pk, email=email, ip=client_ip)
    campaign_pk, hashed = campaign.pk, email_hmac(email)
    enqueue_on_commit("subscriptions.send_manage_link", campaign_pk, hashed)


def data_erasure_request(*, subscriber_id: int) -> bool:
    """ "Delete my data": withdraw now, erase in the task. False if already gone."""
    return subscriber_withdraw(
        subscriber_id=subscriber_id,
        reason=WithdrawalReason.ERASURE_REQUEST,
        source=ConsentEvent.Source.PREFERENCES,
    )
