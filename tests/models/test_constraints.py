"""Database constraints that later flows rely on, checked against PostgreSQL."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from subscriptions.models import Delivery, Mailing, Subscription
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory

pytestmark = pytest.mark.django_db


def test_it_rejects_an_email_differing_only_in_case_within_a_campaign():
    first = SubscriberFactory(email="Someone@Example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriberFactory(campaign=first.campaign, email="someone@example.COM")


def test_it_allows_the_same_email_in_another_campaign():
    first = SubscriberFactory(email="someone@example.com")
    other = SubscriberFactory(campaign=CampaignFactory(), email="someone@example.com")
    assert other.campaign_id != first.campaign_id


def test_it_rejects_two_open_subscriptions_for_one_subscriber_and_topic():
    subscription = SubscriptionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(
            subscriber=subscription.subscriber, topic=subscription.topic, source=Subscription.Source.PAGE
        )


def test_it_allows_a_new_subscription_after_the_old_one_ended():
    subscription = SubscriptionFactory()
    Subscription.objects.filter(pk=subscription.pk).update(ended_at=timezone.now(), ended_reason="changed")
    Subscription.objects.create(
        subscriber=subscription.subscriber, topic=subscription.topic, source=Subscription.Source.PREFERENCES
    )
    assert subscription.subscriber.subscriptions.count() == 2


def test_it_rejects_a_second_delivery_of_a_mailing_to_one_person():
    subscriber = SubscriberFactory()
    mailing = Mailing.objects.create(campaign=subscriber.campaign, subject="News", body="Hello")
    Delivery.objects.create(mailing=mailing, subscriber=subscriber)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(mailing=mailing, subscriber=subscriber)


def test_it_rejects_two_topics_with_one_slug_in_a_campaign():
    topic = TopicFactory(slug="general")
    with pytest.raises(IntegrityError), transaction.atomic():
        TopicFactory(campaign=topic.campaign, slug="general")
