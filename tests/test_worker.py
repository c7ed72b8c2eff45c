"""Tasks enqueued to the real Redis and run by a real worker process."""

import datetime

import pytest
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, Subscriber, Suppression
from subscriptions.services.signup import stream
from subscriptions.services.signup.request import signup_request
from subscriptions.tasks import erase_subscriber, expire_pending_signups
from tests.support.factories import (
    CampaignFactory,
    SignupFormFactory,
    SubscriberFactory,
    SubscriptionFactory,
    TopicFactory,
)
from tests.support.worker import worker_process  # noqa: F401  (the fixture)

pytestmark = pytest.mark.worker


def test_a_worker_expires_an_unconfirmed_sign_up(worker_process):  # noqa: F811
    campaign = CampaignFactory(pending_expiry_days=7)
    stale = SubscriberFactory(campaign=campaign, status=Subscriber.Status.PENDING)
    fresh = SubscriberFactory(campaign=campaign, status=Subscriber.Status.PENDING)
    Subscriber.objects.filter(pk=stale.pk).update(created_at=timezone.now() - datetime.timedelta(days=8))

    expire_pending_signups.delay()

    worker_process.wait_for(
        lambda: not Subscriber.objects.filter(pk=stale.pk).exists(), message="the stale sign-up to be deleted"
    )
    assert Subscriber.objects.filter(pk=fresh.pk).exists()


def test_a_worker_erases_a_subscriber_and_remembers_the_suppression(worker_process):  # noqa: F811
    subscriber = SubscriberFactory(email="leaving@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    SubscriptionFactory(subscriber=subscriber)

    erase_subscriber.delay(subscriber.pk, "one_click")

    worker_process.wait_for(
        lambda: not Subscriber.objects.filter(pk=subscriber.pk).exists(), message="the subscriber to be erased"
    )
    suppression = Suppression.objects.get(campaign_id=subscriber.campaign_id)
    # Computed here and in the worker with the same SUPPRESSION_KEY: the rows must agree.
    assert suppression.email_hmac == email_hmac("leaving@example.com")
    assert suppression.reason == Suppression.Reason.WITHDRAWN


def test_a_worker_records_an_accepted_sign_up_from_the_intake(worker_process):  # noqa: F811
    general = TopicFactory(slug="general")
    form = SignupFormFactory(campaign=general.campaign, topics=[general])

    signup_request(
        form=form,
        email="brook@example.com",
        first_name="Brook",
        topics=[general],
        attributes={},
        source=ConsentEvent.Source.PAGE,
        client_ip="192.0.2.8",
    )

    worker_process.wait_for(
        lambda: ConsentEvent.objects.filter(subscriber__email="brook@example.com").exists(),
        message="the sign-up to be recorded",
    )
    worker_process.wait_for(lambda: stream.backlog() == 0, message="the intake to be emptied")
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
