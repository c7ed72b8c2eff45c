"""When the preference centre's emails go: the manage link only to someone still
subscribed, and each side of an email change once, the old address forgotten once its
notice is sent (or never will be). mail.transactional builds and sends them."""

from django.db import transaction

from subscriptions.mail import transactional
from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services.preferences import EMAIL_CHANGE_REQUESTED, EMAIL_CHANGED

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
    transactional.manage_link(subscriber=subscriber)
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
        transactional.email_change_confirmation(
            event=event, to=event.details["new_email"], valid_days=EMAIL_CHANGE_VALID_DAYS
        )
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
        transactional.email_changed_notice(campaign=event.subscriber.campaign, to=event.details["notify"])
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
