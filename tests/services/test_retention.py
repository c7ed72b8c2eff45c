import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from subscriptions.models import ConsentEvent, DailyStat, Delivery, Mailing, Subscriber, Subscription
from subscriptions.services import retention
from subscriptions.services.retention import pending_signups_expire
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

SIGNED_UP = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)


def days_later(days: float) -> datetime.datetime:
    return SIGNED_UP + datetime.timedelta(days=days)


def pending_signup(**kwargs) -> Subscriber:
    """A sign-up as the form leaves it: pending, with its topic and its consent request."""
    with time_machine.travel(SIGNED_UP, tick=False):
        subscriber = SubscriberFactory.create(status=Subscriber.Status.PENDING, **kwargs)
        SubscriptionFactory(subscriber=subscriber)
        ConsentEvent.objects.create(
            subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE
        )
    return subscriber


def test_it_deletes_a_sign_up_nobody_confirmed_within_the_expiry():
    subscriber = pending_signup()
    mailing = Mailing.objects.create(campaign=subscriber.campaign, subject="Hello", body="Hello")
    Delivery.objects.create(mailing=mailing, subscriber=subscriber)

    assert pending_signups_expire(now=days_later(8)) == 1

    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert not Subscription.objects.filter(subscriber_id=subscriber.pk).exists()
    assert not ConsentEvent.objects.filter(subscriber_id=subscriber.pk).exists()
    assert not Delivery.objects.filter(subscriber_id=subscriber.pk).exists()


def test_it_keeps_a_sign_up_still_within_the_expiry():
    subscriber = pending_signup()

    assert pending_signups_expire(now=days_later(6.9)) == 0

    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert ConsentEvent.objects.filter(subscriber_id=subscriber.pk).count() == 1


def test_the_expiry_runs_from_the_newest_request_not_the_first():
    subscriber = pending_signup()
    with time_machine.travel(days_later(6.9), tick=False):
        ConsentEvent.objects.create(
            subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE
        )
    assert pending_signups_expire(now=days_later(7.1)) == 0
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert pending_signups_expire(now=days_later(14)) == 1


def test_it_uses_each_campaigns_own_expiry():
    quick = pending_signup(campaign=CampaignFactory(pending_expiry_days=1))
    patient = pending_signup(campaign=CampaignFactory(pending_expiry_days=7))

    assert pending_signups_expire(now=days_later(2)) == 1

    assert not Subscriber.objects.filter(pk=quick.pk).exists()
    assert Subscriber.objects.filter(pk=patient.pk).exists()


def test_it_reads_the_clock_when_no_time_is_given():
    subscriber = pending_signup()

    with time_machine.travel(days_later(8), tick=False):
        assert pending_signups_expire() == 1

    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()


@pytest.mark.parametrize(
    "status",
    [Subscriber.Status.ACTIVE, Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.LAPSED, Subscriber.Status.BOUNCED],
)
def test_it_never_touches_anyone_but_pending_sign_ups(status):
    subscriber = pending_signup()
    Subscriber.objects.filter(pk=subscriber.pk).update(status=status)

    assert pending_signups_expire(now=days_later(365)) == 0

    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    # An active person's request for a further topic is their own business, not expiry's.
    assert ConsentEvent.objects.filter(subscriber_id=subscriber.pk, kind=ConsentEvent.Kind.REQUESTED).exists()
    assert Subscription.objects.filter(subscriber_id=subscriber.pk).exists()


def test_it_keeps_a_pending_sign_up_on_legal_hold():
    subscriber = pending_signup(legal_hold=True, legal_hold_reason="Litigation")

    assert pending_signups_expire(now=days_later(30)) == 0

    assert Subscriber.objects.filter(pk=subscriber.pk).exists()


def test_it_counts_expired_sign_ups_per_campaign_on_the_day_they_expire():
    first, second = CampaignFactory(), CampaignFactory()
    for campaign in (first, first, second):
        pending_signup(campaign=campaign)

    pending_signups_expire(now=days_later(8))

    counts = set(DailyStat.objects.filter(metric=DailyStat.Metric.EXPIRED).values_list("campaign_id", "day", "count"))
    assert counts == {(first.pk, datetime.date(2026, 3, 10), 2), (second.pk, datetime.date(2026, 3, 10), 1)}


def test_it_works_through_more_sign_ups_than_one_batch(monkeypatch):
    monkeypatch.setattr(retention, "EXPIRY_BATCH_SIZE", 2)
    campaign = CampaignFactory()
    for _ in range(5):
        pending_signup(campaign=campaign)

    assert pending_signups_expire(now=days_later(8)) == 5

    assert not Subscriber.objects.filter(campaign=campaign).exists()
    assert DailyStat.objects.get(campaign=campaign, metric=DailyStat.Metric.EXPIRED).count == 5


def test_it_deletes_with_a_fixed_number_of_statements_however_many_expire():
    campaign = CampaignFactory()
    for _ in range(20):
        pending_signup(campaign=campaign)

    with CaptureQueriesContext(connection) as queries:
        pending_signups_expire(now=days_later(8))

    deletes = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("DELETE")]
    assert len(deletes) == 4  # deliveries, consent events, subscriptions, subscribers
    assert not Subscriber.objects.filter(campaign=campaign).exists()
