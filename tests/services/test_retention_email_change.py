"""An email change keeps neither address longer than it is of use."""

import datetime
from unittest import mock

import pytest
from anymail.exceptions import AnymailRecipientsRefused
from celery.exceptions import Retry
from django.utils import timezone

from subscriptions import tasks
from subscriptions.models import ConsentEvent
from subscriptions.services import preferences, retention
from tests.support.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def days_ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


def change_requested(*, new_email: str, days_old: float) -> ConsentEvent:
    person = SubscriberFactory.create()
    preferences.email_change_request(subscriber_id=person.pk, new_email=new_email)
    event = ConsentEvent.objects.get(subscriber=person, details__new_email=new_email)
    ConsentEvent.objects.filter(pk=event.pk).update(created_at=days_ago(days_old))
    return event


def changed(*, old_email: str, days_old: float) -> ConsentEvent:
    person = SubscriberFactory.create()
    details = {"change": preferences.EMAIL_CHANGED, "request_id": 1, "notify": old_email}
    event = ConsentEvent.objects.create(
        subscriber=person, kind=ConsentEvent.Kind.CHANGED, source=ConsentEvent.Source.EMAIL, details=details
    )
    ConsentEvent.objects.filter(pk=event.pk).update(created_at=days_ago(days_old))
    return event


def test_an_unconfirmed_new_address_is_forgotten_once_its_link_has_expired():
    stale = change_requested(new_email="stranger@example.net", days_old=3)
    fresh = change_requested(new_email="mine@example.net", days_old=1)
    assert retention.email_change_addresses_forget() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.details == {"change": preferences.EMAIL_CHANGE_REQUESTED, "expired": True}
    assert fresh.details["new_email"] == "mine@example.net"


def test_an_old_address_whose_notice_never_went_is_forgotten():
    stale = changed(old_email="old@example.com", days_old=2)
    fresh = changed(old_email="recent@example.com", days_old=0.1)
    assert retention.email_change_addresses_forget() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.details == {"change": preferences.EMAIL_CHANGED, "request_id": 1}
    assert fresh.details["notify"] == "recent@example.com"


def test_the_quarter_hourly_expiry_task_forgets_them():
    stale = change_requested(new_email="stranger@example.net", days_old=3)
    tasks.expire_pending_signups.delay()
    assert not ConsentEvent.objects.filter(pk=stale.pk, details__has_key="new_email").exists()


def test_a_notice_refused_for_good_forgets_the_old_address():
    event = changed(old_email="old@example.com", days_old=0)
    with mock.patch("subscriptions.mail.transactional.build_email") as build:
        build.return_value.send.side_effect = AnymailRecipientsRefused("refused")
        with pytest.raises(AnymailRecipientsRefused):
            tasks.send_email_changed_notice.delay(event.pk)
    event.refresh_from_db()
    assert "notify" not in event.details


def test_a_notice_that_keeps_failing_forgets_the_old_address_after_the_last_attempt():
    event = changed(old_email="old@example.com", days_old=0)
    task = tasks.send_email_changed_notice
    with mock.patch("subscriptions.mail.transactional.build_email") as build:
        build.return_value.send.side_effect = ConnectionError("down")
        with pytest.raises(Retry):
            task.apply(args=[event.pk], retries=0, throw=True)
        event.refresh_from_db()
        assert event.details["notify"] == "old@example.com"  # kept for the retry
        with pytest.raises(ConnectionError):
            task.apply(args=[event.pk], retries=task.max_retries, throw=True)
    event.refresh_from_db()
    assert "notify" not in event.details


def test_the_daily_retention_sweep_forgets_them_too():
    stale = change_requested(new_email="stranger@example.net", days_old=3)
    assert retention.retention_sweep()["email_change_addresses_forgotten"] == 1
    assert not ConsentEvent.objects.filter(pk=stale.pk, details__has_key="new_email").exists()
