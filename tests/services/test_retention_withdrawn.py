"""The safety net under erasure after withdrawal: nobody who left stays on file."""

import datetime
from unittest import mock

import pytest
from anymail.exceptions import AnymailRecipientsRefused
from django.utils import timezone

from subscriptions import tasks
from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber, Suppression
from subscriptions.services import retention
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from tests.support.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def withdrawn_without_erasure(*, reason=WithdrawalReason.ONE_CLICK, minutes_ago=30, **kwargs) -> Subscriber:
    """Withdrawn as usual, but the erasure task it queued was lost."""
    person = SubscriberFactory.create(**kwargs)
    subscriber_withdraw(subscriber_id=person.pk, reason=reason, source=ConsentEvent.Source.EMAIL, erase=False)
    withdrawn_at = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    Subscriber.objects.filter(pk=person.pk).update(withdrawn_at=withdrawn_at)
    return person


def test_it_erases_someone_whose_erasure_after_withdrawal_was_missed():
    person = withdrawn_without_erasure(email="missed@example.com")
    assert retention.withdrawn_erase() == 1
    assert not Subscriber.objects.filter(pk=person.pk).exists()
    assert Suppression.objects.get(email_hmac=email_hmac("missed@example.com")).reason == "withdrawn"


@pytest.mark.parametrize(
    ("reason", "suppression"),
    [(WithdrawalReason.HARD_BOUNCE, "hard_bounce"), (WithdrawalReason.LAPSED, "lapsed"),
     (WithdrawalReason.COMPLAINT, "complaint")],
)  # fmt: skip
def test_the_suppression_keeps_the_reason_they_left_for(reason, suppression):
    withdrawn_without_erasure(reason=reason, email="left@example.com")
    retention.withdrawn_erase()
    assert Suppression.objects.get(email_hmac=email_hmac("left@example.com")).reason == suppression


def test_it_leaves_a_withdrawal_of_moments_ago_to_its_own_task():
    person = withdrawn_without_erasure(minutes_ago=2)
    assert retention.withdrawn_erase() == 0
    assert Subscriber.objects.filter(pk=person.pk).exists()


def test_an_unsubscribe_by_email_waits_for_its_acknowledgement_retries():
    person = withdrawn_without_erasure(reason=WithdrawalReason.INBOUND_EMAIL, minutes_ago=30)
    assert retention.withdrawn_erase() == 0
    assert retention.withdrawn_erase(now=timezone.now() + datetime.timedelta(hours=1)) == 1
    assert not Subscriber.objects.filter(pk=person.pk).exists()


def test_it_keeps_people_on_legal_hold_and_those_still_subscribed():
    held = withdrawn_without_erasure(legal_hold=True)
    active = SubscriberFactory()
    assert retention.withdrawn_erase() == 0
    assert Subscriber.objects.filter(pk__in=[held.pk, active.pk]).count() == 2


def test_its_quarter_hourly_task_runs_it():
    person = withdrawn_without_erasure()
    tasks.erase_withdrawn.delay()
    assert not Subscriber.objects.filter(pk=person.pk).exists()


def test_a_refused_inbound_acknowledgement_still_erases():
    person = withdrawn_without_erasure(reason=WithdrawalReason.INBOUND_EMAIL, minutes_ago=0)
    with mock.patch("subscriptions.mail.transactional.build_email") as build:
        build.return_value.send.side_effect = AnymailRecipientsRefused("refused")
        with pytest.raises(AnymailRecipientsRefused):
            tasks.acknowledge_inbound_unsubscribe.delay(person.pk)
    assert not Subscriber.objects.filter(pk=person.pk).exists()


def test_the_daily_retention_sweep_runs_it_too():
    person = withdrawn_without_erasure()
    assert retention.retention_sweep()["withdrawn_erased"] == 1
    assert not Subscriber.objects.filter(pk=person.pk).exists()
