"""When the double opt-in's emails go: the confirmation request once per request, the
welcome only to someone still subscribed. mail.transactional builds and sends them."""

from django.db import transaction

from subscriptions.mail import transactional
from subscriptions.models import ConsentEvent, Subscriber, Topic


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
        topics = list(Topic.objects.filter(pk__in=event.topic_ids).order_by("position", "name"))
        transactional.signup_confirmation(event=event, topics=topics)
        event.details = {**event.details, "emailed": True}
        event.save(update_fields=["details"])
    return True


def welcome_send(*, subscriber_id: int, topic_ids: list[int]) -> bool:
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=subscriber_id).first()
    if subscriber is None or not subscriber.is_active:
        return False
    transactional.welcome(
        subscriber=subscriber,
        topics=list(Topic.objects.filter(pk__in=topic_ids).order_by("position", "name")),
        all_topics=list(
            Topic.objects.filter(subscriptions__subscriber=subscriber, subscriptions__ended_at__isnull=True)
        ),
    )
    return True
