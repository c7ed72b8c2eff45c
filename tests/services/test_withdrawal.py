"""Withdrawal stops processing in the request and queues the erasure; erasing is tested in test_erasure."""

import pytest

from subscriptions.models import ConsentEvent, DailyStat, Subscriber, Subscription
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from tests.support.factories import SubscriberFactory, SubscriptionFactory
from tests.support.nothing_left import assert_nothing_left

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    subscriber = SubscriberFactory(email="ottoline.brisk@example.com", first_name="Ottoline")
    SubscriptionFactory(subscriber=subscriber)
    return subscriber


def withdraw(person, **kwargs) -> bool:
    return subscriber_withdraw(
        subscriber_id=person.pk, reason=WithdrawalReason.ONE_CLICK, source=ConsentEvent.Source.EMAIL, **kwargs
    )


def test_it_stops_processing_at_once_and_queues_the_erasure(person, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert withdraw(person)

    person.refresh_from_db()
    assert person.status == Subscriber.Status.UNSUBSCRIBED
    assert not Subscription.objects.filter(subscriber=person, ended_at__isnull=True).exists()
    event = ConsentEvent.objects.get(subscriber=person, kind=ConsentEvent.Kind.WITHDRAWN)
    assert event.details == {"reason": "one_click"}
    assert DailyStat.objects.get(metric="withdrawals").reason == "one_click"
    assert len(queued) == 1


def test_the_queued_erasure_leaves_nothing(person, run):
    run(withdraw, person)

    assert not Subscriber.objects.filter(pk=person.pk).exists()
    assert_nothing_left("ottoline.brisk@example.com", "Ottoline")


def test_withdrawing_twice_changes_nothing_the_second_time(person, django_capture_on_commit_callbacks):
    withdraw(person, erase=False)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert not withdraw(person)

    assert ConsentEvent.objects.filter(subscriber=person, kind=ConsentEvent.Kind.WITHDRAWN).count() == 1
    assert queued == []
