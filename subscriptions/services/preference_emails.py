"""The preference centre's emails: the manage link, and both sides of an email change."""

from django.db import transaction
from django.urls import reverse

from subscriptions.mail.transactional import absolute_url, build_email, manage_url
from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services.preferences import EMAIL_CHANGE_REQUESTED, EMAIL_CHANGED
from subscriptions.tokens import ConfirmPurpose, make_confirm_token

# An email change waits this long for the new inbox, whatever the campaign's
# pending expiry: the person is already subscribed and can simply ask again.
EMAIL_CHANGE_VALID_DAYS = 2


def manage_link_send(*, campaign_id: int, hashed_email: str) -> bool:
    """Mail the manage link to the subscriber with this address hash, if there is one
    still active; otherwise do nothing (the request that queued this cannot tell)."""
    subscriber = (
        Subscriber.objects.select_related("campaign")
        .filter(campaign_id=campaign_id, email_hmac=hashed_email, status=Subscriber.Status.ACTIVE)
        .first()
    )
    if subscriber is None or not subscriber.is_active:
        return False
    context = {"subscriber": subscriber, "manage_url": manage_url(subscriber)}
    build_email(
        template="manage_link",
        campaign=subscriber.campaign,
        to=subscriber.email,
        context=context,
        subscriber=subscriber,
    ).send()
    return True


def email_change_confirmation_send(*, event_id: int) -> bool:
    """Mail the confirmation link to the new address, once."""
    with transaction.atomic():
        event = (
            ConsentEvent.objects.select_for_update(of=("self",))
            .select_related("subscriber__campaign")
            .filter(pk=event_id, details__change=EMAIL_CHANGE_REQUESTED)
            .first()
        )
        if event is None or "new_email" not in event.details or event.details.get("emailed"):
            return False
        subscriber = event.subscriber
        token = make_confirm_token(
            purpose=ConfirmPurpose.EMAIL_CHANGE,
            campaign_id=subscriber.campaign_id,
            subscriber_id=subscriber.pk,
            event_id=event.pk,
            valid_days=EMAIL_CHANGE_VALID_DAYS,
        )
        context = {
            "confirm_url": absolute_url(reverse("manage-email-confirm", args=[token])),
            "valid_days": EMAIL_CHANGE_VALID_DAYS,
        }
        new_email = event.details["new_email"]
        build_email(template="email_change_confirm", campaign=subscriber.campaign, to=new_email, context=context).send()
        event.details = {**event.details, "emailed": True}
        event.save(update_fields=["details"])
    return True


def email_changed_notice_send(*, event_id: int) -> bool:
    """Tell the old address its subscription moved, then forget the old address."""
    with transaction.atomic():
        event = (
            ConsentEvent.objects.select_for_update(of=("self",))
            .select_related("subscriber__campaign")
            .filter(pk=event_id, details__change=EMAIL_CHANGED)
            .first()
        )
        if event is None or not event.details.get("notify"):
            return False
        campaign = event.subscriber.campaign
        build_email(template="email_changed_notice", campaign=campaign, to=event.details["notify"], context={}).send()
        event.details = {key: value for key, value in event.details.items() if key != "notify"}
        event.save(update_fields=["details"])
    return True


def email_changed_notice_forget(*, event_id: int) -> None:
    """Drop the old address from an email change whose notice will never be sent."""
    with transaction.atomic():
        event = ConsentEvent.objects.select_for_update().filter(pk=event_id, details__change=EMAIL_CHANGED).first()
        if event is not None and "notify" in event.details:
            event.details = {key: value for key, value in event.details.items() if key != "notify"}
            event.save(update_fields=["details"])
