"""Erasure that follows a withdrawal re-checks the person when it runs, not when it was queued."""

import pytest

from subscriptions import tasks
from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services.signup import signup_confirm
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from tests.support.factories import SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def person():
    subscriber = SubscriberFactory(email="ottoline.brisk@example.com", first_name="Ottoline")
    SubscriptionFactory(subscriber=subscriber)
    return subscriber


def withdraw_leaving_the_erasure_queued(subscriber, django_capture_on_commit_callbacks):
    """Withdraw as a request would; the erase task it queues has not run yet."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        subscriber_withdraw(
            subscriber_id=subscriber.pk, reason=WithdrawalReason.ONE_CLICK, source=ConsentEvent.Source.EMAIL
        )
    assert len(queued) == 1


def sign_up_again_and_confirm(subscriber):
    request = ConsentEvent.objects.create(
        subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE,
        topic_ids=[], details={"first_name": subscriber.first_name},
    )  # fmt: skip
    assert signup_confirm(subscriber_id=subscriber.pk, event_id=request.pk) is not None


class TestDelayedErasure:
    def test_it_does_not_erase_someone_who_confirmed_again_before_it_ran(
        self, person, django_capture_on_commit_callbacks
    ):
        withdraw_leaving_the_erasure_queued(person, django_capture_on_commit_callbacks)
        sign_up_again_and_confirm(person)

        tasks.erase_subscriber(person.pk, str(WithdrawalReason.ONE_CLICK))

        person.refresh_from_db()
        assert person.status == Subscriber.Status.ACTIVE
        assert person.consent_events.filter(kind=ConsentEvent.Kind.CONFIRMED).exists()

    def test_it_does_not_erase_someone_who_signed_up_again_and_has_not_confirmed_yet(
        self, person, django_capture_on_commit_callbacks
    ):
        withdraw_leaving_the_erasure_queued(person, django_capture_on_commit_callbacks)
        Subscriber.objects.filter(pk=person.pk).update(status=Subscriber.Status.PENDING)

        tasks.erase_subscriber(person.pk, str(WithdrawalReason.ONE_CLICK))

        assert Subscriber.objects.filter(pk=person.pk).exists()

    def test_it_still_erases_someone_who_stayed_withdrawn(self, person, django_capture_on_commit_callbacks):
        withdraw_leaving_the_erasure_queued(person, django_capture_on_commit_callbacks)

        tasks.erase_subscriber(person.pk, str(WithdrawalReason.ONE_CLICK))

        assert not Subscriber.objects.filter(pk=person.pk).exists()
