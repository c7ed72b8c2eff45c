"""People with everything a campaign holds about them, for erasure tests."""

import datetime

from django.utils import timezone

from subscriptions.models import ConsentEvent, Delivery, Mailing, PrivacyNotice, Subscriber, Subscription, Topic
from tests.support.factories import SubscriberFactory


def person_with_history(
    *,
    campaign,
    email: str,
    first_name: str,
    topics: list[Topic],
    mailing: Mailing | None = None,
    notice: PrivacyNotice | None = None,
    confirmed_at: datetime.datetime | None = None,
    **fields,
) -> Subscriber:
    """An active subscriber with open subscriptions, a requested and a confirmed consent
    event (the request carries the name, as sign-up's does) and, given a mailing, a delivery."""
    confirmed_at = confirmed_at or timezone.now()
    subscriber = SubscriberFactory.create(
        campaign=campaign, email=email, first_name=first_name, confirmed_at=confirmed_at,
        last_confirmed_at=confirmed_at, **fields,
    )  # fmt: skip
    for topic in topics:
        Subscription.objects.create(subscriber=subscriber, topic=topic, source=Subscription.Source.PAGE)
    topic_ids = [topic.pk for topic in topics]
    ConsentEvent.objects.create(
        subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE,
        privacy_notice=notice, topic_ids=topic_ids, details={"first_name": first_name},
    )  # fmt: skip
    ConsentEvent.objects.create(
        subscriber=subscriber, kind=ConsentEvent.Kind.CONFIRMED, source=ConsentEvent.Source.EMAIL,
        privacy_notice=notice, topic_ids=topic_ids,
    )  # fmt: skip
    if mailing is not None:
        Delivery.objects.create(mailing=mailing, subscriber=subscriber, status=Delivery.Status.SENT)
    return subscriber


def held_intact(subscriber: Subscriber) -> bool:
    """The person and everything about them is still there."""
    return (
        Subscriber.objects.filter(pk=subscriber.pk, email=subscriber.email).exists()
        and Subscription.objects.filter(subscriber_id=subscriber.pk).exists()
        and ConsentEvent.objects.filter(subscriber_id=subscriber.pk).exists()
    )
