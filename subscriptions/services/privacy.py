"""Data subject requests as staff answer them: find, export, rectify, restrict, hold, erase.

A request is made to one campaign's controller about one person, so every function
takes the campaign it acts for and refuses a person of another. Each takes the
staff `actor` and writes an AuditEvent (who, what, which id, when) and never any
personal data: no address, no name, not even the free-text reason for a hold.
A refusal is a ValidationError worded for the person who pressed the button, and
changes nothing.

Publishing a new privacy notice lives here too: it is what people are told about
their data, and it may be announced to every active subscriber.
"""

from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max

from subscriptions import selectors
from subscriptions.addresses import normalise_email
from subscriptions.audit import Actor, audit_record, recorded_actor
from subscriptions.models import Campaign, ConsentEvent, Mailing, PrivacyNotice, Subscriber
from subscriptions.models.subscribers import new_link_key
from subscriptions.services import data_export, mailings
from subscriptions.services.erasure import held_erasure_complete, subscriber_erase
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw


class Action(StrEnum):
    SEARCHED = "subscriber_searched"
    EXPORTED = "subscriber_exported"
    RECTIFIED = "subscriber_rectified"
    RESTRICTED = "subscriber_restricted"
    UNRESTRICTED = "subscriber_unrestricted"
    HOLD_PLACED = "legal_hold_placed"
    HOLD_LIFTED = "legal_hold_lifted"
    ERASED = "subscriber_erased"
    ERASURE_HELD = "subscriber_erasure_held"
    NOTICE_PUBLISHED = "privacy_notice_published"


class ErasureOutcome(StrEnum):
    ERASED = "erased"
    HELD = "held"  # processing stopped; the data stays until the legal hold lifts


def _locked(campaign_id: int, subscriber_id: int) -> Subscriber:
    subscriber = selectors.subscriber_locked(subscriber_id=subscriber_id)
    if subscriber is None:
        raise ValidationError(
            f"There is no subscriber {subscriber_id}: they may already have been erased. Nothing was changed."
        )
    if subscriber.campaign_id != campaign_id:
        raise ValidationError(
            f"Subscriber {subscriber_id} belongs to another campaign: a request is answered for one campaign "
            "at a time. Nothing was changed."
        )
    return subscriber


def subscriber_find(*, campaign_id: int, email: str, actor: Actor) -> Subscriber | None:
    """The person with exactly this address in this campaign; never a partial match."""
    address = normalise_email(email)
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(
            "Enter the person's full email address: people are found by exact address only."
        ) from None
    if not Campaign.objects.filter(pk=campaign_id).exists():
        raise ValidationError("Choose a campaign: people are found within one campaign at a time.")
    subscriber = Subscriber.objects.filter(campaign_id=campaign_id, email__iexact=address).first()
    audit_record(
        actor=actor, action=Action.SEARCHED, campaign_id=campaign_id, target_type="subscriber",
        target_id=subscriber.pk if subscriber else None, found=subscriber is not None,
    )  # fmt: skip
    return subscriber


def subscriber_export(*, campaign_id: int, subscriber_id: int, actor: Actor) -> dict[str, Any]:
    """Everything held about one person, as the person's own download gives it."""
    with transaction.atomic():
        _locked(campaign_id, subscriber_id)
        # The row is locked, so the person cannot be erased while this is read.
        data = data_export.subscriber_data_export(subscriber_id=subscriber_id) or {}
        audit_record(
            actor=actor, action=Action.EXPORTED, campaign_id=campaign_id, target_type="subscriber",
            target_id=subscriber_id,
        )  # fmt: skip
    return data


def subscriber_rectify(
    *,
    campaign_id: int,
    subscriber_id: int,
    actor: Actor,
    email: str | None = None,
    first_name: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> list[str]:
    """Correct a person's details; returns the names of the fields changed (none: nothing written)."""
    with transaction.atomic():
        subscriber = _locked(campaign_id, subscriber_id)
        changed = _apply_corrections(subscriber, email, first_name, attributes)
        if not changed:
            return []
        rotated = []
        if "email" in changed:
            # As for a change the person makes (preferences.email_change_confirm): links
            # mailed to the old inbox stop working, and so cannot show the new address.
            subscriber.link_key, rotated = new_link_key(), ["link_key"]
        subscriber.save(update_fields=changed + rotated)
        ConsentEvent.objects.create(
            subscriber=subscriber, kind=ConsentEvent.Kind.CHANGED, source=ConsentEvent.Source.ADMIN,
            details={"rectified": changed},
        )  # fmt: skip
        audit_record(
            actor=actor, action=Action.RECTIFIED, campaign_id=campaign_id, target_type="subscriber",
            target_id=subscriber_id, fields=changed,
        )  # fmt: skip
    return changed


def _apply_corrections(
    subscriber: Subscriber, email: str | None, first_name: str | None, attributes: dict[str, Any] | None
) -> list[str]:
    changed = []
    if email is not None and normalise_email(email) != subscriber.email:
        subscriber.email = _new_address(subscriber, normalise_email(email))
        changed.append("email")
    if first_name is not None and first_name.strip() != subscriber.first_name:
        subscriber.first_name = first_name.strip()
        changed.append("first_name")
    if attributes is not None and attributes != subscriber.attributes:
        declared = {field["name"] for field in subscriber.campaign.extra_fields}
        unknown = sorted(set(attributes) - declared)
        if unknown:
            raise ValidationError(f"This campaign does not collect {', '.join(unknown)}. Nothing was changed.")
        subscriber.attributes = attributes
        changed.append("attributes")
    return changed


def _new_address(subscriber: Subscriber, address: str) -> str:
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError("Enter a valid email address. Nothing was changed.") from None
    taken = Subscriber.objects.filter(campaign_id=subscriber.campaign_id, email__iexact=address)
    if taken.exclude(pk=subscriber.pk).exists():
        raise ValidationError("Another subscriber of this campaign has that address. Nothing was changed.")
    return address


def subscriber_restrict(*, campaign_id: int, subscriber_id: int, restricted: bool, actor: Actor) -> None:
    """Art. 18: a restricted person is kept but receives nothing and is left out of every audience."""
    with transaction.atomic():
        subscriber = _locked(campaign_id, subscriber_id)
        if subscriber.restricted == restricted:
            state = "already restricted" if restricted else "not restricted"
            raise ValidationError(f"Subscriber {subscriber_id} is {state}. Nothing was changed.")
        subscriber.restricted = restricted
        subscriber.save(update_fields=["restricted"])
        action = Action.RESTRICTED if restricted else Action.UNRESTRICTED
        audit_record(
            actor=actor, action=action, campaign_id=campaign_id, target_type="subscriber", target_id=subscriber_id
        )


def legal_hold_place(*, campaign_id: int, subscriber_id: int, reason: str, actor: Actor) -> None:
    """Keep a person's data, whatever erasure falls due, until the hold is lifted."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("Give the reason for the legal hold. Nothing was changed.")
    with transaction.atomic():
        subscriber = _locked(campaign_id, subscriber_id)
        if subscriber.legal_hold:
            raise ValidationError(f"Subscriber {subscriber_id} is already on legal hold. Nothing was changed.")
        subscriber.legal_hold, subscriber.legal_hold_reason = True, reason[:300]
        subscriber.legal_hold_set_by = recorded_actor(actor)
        subscriber.save(update_fields=["legal_hold", "legal_hold_reason", "legal_hold_set_by"])
        audit_record(
            actor=actor, action=Action.HOLD_PLACED, campaign_id=campaign_id, target_type="subscriber",
            target_id=subscriber_id,
        )  # fmt: skip


def legal_hold_lift(*, campaign_id: int, subscriber_id: int, actor: Actor) -> ErasureOutcome | None:
    """Lift a hold. An erasure it was delaying happens now: returns ERASED then, else None."""
    with transaction.atomic():
        subscriber = _locked(campaign_id, subscriber_id)
        if not subscriber.legal_hold:
            raise ValidationError(f"Subscriber {subscriber_id} is not on legal hold. Nothing was changed.")
        subscriber.legal_hold, subscriber.legal_hold_reason, subscriber.legal_hold_set_by = False, "", None
        subscriber.save(update_fields=["legal_hold", "legal_hold_reason", "legal_hold_set_by"])
        audit_record(
            actor=actor, action=Action.HOLD_LIFTED, campaign_id=campaign_id, target_type="subscriber",
            target_id=subscriber_id,
        )  # fmt: skip
        if subscriber.erasure_due_at is None:
            return None
        cause = held_erasure_complete(subscriber=subscriber)
        audit_record(
            actor=actor, action=Action.ERASED, campaign_id=campaign_id, target_type="subscriber",
            target_id=subscriber_id, cause=str(cause), after="legal_hold_lifted",
        )  # fmt: skip
    return ErasureOutcome.ERASED


def subscriber_erase_for_staff(*, campaign_id: int, subscriber_id: int, actor: Actor) -> ErasureOutcome:
    """Erase a person now. On legal hold, processing stops and the data stays until the hold lifts."""
    with transaction.atomic():
        _locked(campaign_id, subscriber_id)
        subscriber_withdraw(
            subscriber_id=subscriber_id, reason=WithdrawalReason.STAFF, source=ConsentEvent.Source.ADMIN, erase=False
        )
        if subscriber_erase(subscriber_id=subscriber_id, reason=WithdrawalReason.STAFF):
            audit_record(
                actor=actor, action=Action.ERASED, campaign_id=campaign_id, target_type="subscriber",
                target_id=subscriber_id, cause=str(WithdrawalReason.STAFF),
            )  # fmt: skip
            return ErasureOutcome.ERASED
        audit_record(
            actor=actor, action=Action.ERASURE_HELD, campaign_id=campaign_id, target_type="subscriber",
            target_id=subscriber_id,
        )  # fmt: skip
    return ErasureOutcome.HELD


def privacy_notice_publish(
    *,
    campaign: Campaign,
    url: str,
    summary: str,
    retention_summary: str,
    actor: Actor,
    notify_subscribers: bool = False,
    published_on: Any = None,
) -> PrivacyNotice:
    """Publish the next version of a campaign's notice; optionally tell every active subscriber.

    Earlier versions are never edited, so each consent event keeps pointing at the
    text its person actually saw.
    """
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).get()  # one new version at a time
        latest = PrivacyNotice.objects.filter(campaign=campaign).aggregate(latest=Max("version"))["latest"] or 0
        notice = PrivacyNotice.objects.create(
            campaign=campaign, version=latest + 1, url=url, summary=summary, retention_summary=retention_summary,
            published_on=published_on,
        )  # fmt: skip
        audit_record(
            actor=actor, action=Action.NOTICE_PUBLISHED, campaign_id=campaign.pk, target_type="privacy_notice",
            target_id=notice.pk,
        )  # fmt: skip
        if notify_subscribers:
            _announce(notice, actor)
    return notice


def _announce(notice: PrivacyNotice, actor: Actor) -> Mailing:
    campaign = notice.campaign
    body = (
        'Hello {{ first_name|default:"there" }},\n\n'
        f"We have updated the privacy notice for {campaign.name}. In short:\n\n"
        f"{notice.summary}\n\n"
        f"How long we keep your details: {notice.retention_summary}\n\n"
        f"[Read the full privacy notice]({notice.url})\n\n"
        "You do not need to do anything. If you no longer want these emails, use the unsubscribe link below.\n"
    )
    mailing = mailings.mailing_create(
        campaign=campaign, kind=Mailing.Kind.SERVICE_NOTICE, subject=f"{campaign.name}: our privacy notice has changed",
        body=body, created_by=recorded_actor(actor),
    )  # fmt: skip
    return mailings.mailing_send_now(mailing_id=mailing.pk, actor=actor)
