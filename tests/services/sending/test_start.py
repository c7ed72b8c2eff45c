"""Starting mailings: the beat starts those due, once each; one that cannot start holds
up no other."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from subscriptions.models import Delivery, Mailing
from subscriptions.services.sending import start
from tests.support.mailing_fixtures import make_mailing

pytestmark = pytest.mark.django_db


def test_starting_a_due_mailing_fans_out_once_and_sends(
    campaign, topics, audience, fake_esp, django_capture_on_commit_callbacks
):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert start.mailings_dispatch_due() == 1
    assert start.mailing_start(mailing_id=mailing.pk) is False
    mailing.refresh_from_db()
    assert (mailing.status, mailing.recipients_count, mailing.sent_count) == ("sent", 5, 5)
    assert len(fake_esp.sent) == 5


@pytest.mark.django_db(transaction=True)
def test_a_mailing_that_cannot_start_does_not_hold_up_the_next(campaign, topics, audience, monkeypatch, caplog):
    first = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    second = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    now = timezone.now()
    Mailing.objects.filter(pk=first.pk).update(scheduled_at=now - timezone.timedelta(minutes=1))
    Mailing.objects.filter(pk=second.pk).update(scheduled_at=now)
    fan_out = start.mailing_fan_out

    def failing_for_the_first(*, mailing):
        if mailing.pk == first.pk:  # a real database error, in the start's own transaction
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        return fan_out(mailing=mailing)

    monkeypatch.setattr(start, "mailing_fan_out", failing_for_the_first)
    assert start.mailings_dispatch_due() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    # An error that will not pass by itself: back to draft, with the reason for staff
    # (tests/services/test_mailing_start_failure.py); a lost database stays scheduled.
    assert first.status == Mailing.Status.DRAFT
    assert not Delivery.objects.filter(mailing=first).exists()
    assert (second.status, second.recipients_count) == (Mailing.Status.SENT, 5)
    assert f"mailing {first.pk} could not start" in caplog.text
    monkeypatch.setattr(start, "mailing_fan_out", fan_out)
    Mailing.objects.filter(pk=first.pk).update(status=Mailing.Status.SCHEDULED, scheduled_at=now)
    assert start.mailings_dispatch_due() == 1
    first.refresh_from_db()
    assert (first.status, first.recipients_count) == (Mailing.Status.SENT, 5)


def test_a_dispatch_out_of_time_stops_rather_than_going_on(campaign, topics, monkeypatch):
    for _ in range(2):
        mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
        Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    calls = []

    def out_of_time(*, mailing_id):
        calls.append(mailing_id)
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(start, "mailing_start", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        start.mailings_dispatch_due()
    assert len(calls) == 1


def test_a_mailing_scheduled_for_later_is_not_started(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now() + timezone.timedelta(hours=1))
    assert start.mailings_dispatch_due() == 0
    assert not Delivery.objects.filter(mailing=mailing).exists()


def test_a_mailing_with_nobody_to_send_to_is_sent_at_once(campaign, topics):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    start.mailings_dispatch_due()
    mailing.refresh_from_db()
    assert (mailing.status, mailing.recipients_count) == ("sent", 0)
