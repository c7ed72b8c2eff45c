"""The emails of the double opt-in: the confirmation request and the welcome."""

from django.db import transaction
from django.urls import reverse

from subscriptions.mail.transactional import absolute_url, build_email, manage_url
from subscriptions.models import ConsentEvent, Subscriber, Topic
from subscriptions.tokens import ConfirmPurpose, make_confirm_token


def signup_confirmation_send(*, event_id: int) -> bool:
    """Mail the confirmation for one request, once. Returns False when there is
    nothing to send (the request is gone, or was already mailed)."""
    with transaction.atomic():
        event = (
            ConsentEvent.objects.select_for_update(of=("self",))
            .select_related("subscriber__campaign", "form")
            .filter(pk=event_id, kind=ConsentEvent.Kind.REQUESTED)
            .first()
        )
        if event is None or event.details.get("emailed"):
            return False
        subscriber = event.subscriber
        campaign = subscriber.campaign
        variant = event.details.get("variant", "new")
        context: dict[str, object] = {
            "subscriber": subscriber,
            "form": event.form,
            "topics": list(Topic.objects.filter(pk__in=event.topic_ids).order_by("position", "name")),
            "expiry_days": campaign.pending_expiry_days,
        }
        if variant == "already":
            context["manage_url"] = manage_url(subscriber)
        else:
            token = make_confirm_token(
                purpose=ConfirmPurpose.SIGNUP,
                campaign_id=campaign.pk,
                subscriber_id=subscriber.pk,
                event_id=event.pk,
                valid_days=campaign.pending_expiry_days,
            )
            context["confirm_url"] = absolute_url(reverse("signup-confirm", args=[token]))
        template = {"already": "signup_already", "add_topics": "signup_add_topics"}.get(variant, "signup_confirm")
        # A first request gets no unsubscribe header (no subscription exists yet); one from
        # someone already subscribed does.
        message = build_email(
            template=template, campaign=campaign, to=subscriber.email, context=context, subscriber=subscriber
        )
        message.send()
        event.details = {**event.details, "emailed": True}
        event.save(update_fields=["details"])
    return True


def welcome_send(*, subscriber_id: int, topic_ids: list[int]) -> bool:
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    if subscriber is None or not subscriber.is_active:
        return False
    context = {
        "subscriber": subscriber,
        "topics": list(Topic.objects.filter(pk__in=topic_ids).order_by("position", "name")),
        "all_topics": list(
            Topic.objects.filter(subscriptions__subscriber=subscriber, subscriptions__ended_at__isnull=True)
        ),
        "manage_url": manage_url(subscriber),
    }
    build_email(
        template="welcome", campaign=subscriber.campaign, to=subscriber.email, context=context, subscriber=subscriber
    ).send()
    return True
