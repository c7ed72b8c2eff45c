"""Every way an ESP can fail a batch, and what the sending engine does about it."""

import logging
import time

import pytest
from django.core.cache import cache

from subscriptions.addresses import email_hmac
from subscriptions.models import Delivery, Subscriber, Suppression
from subscriptions.services.sending.ratelimit import ratelimit_pause, ratelimit_try_take
from subscriptions.services.sending.reconcile import mailing_progress
from subscriptions.services.sending.run import BULK_MAILER, mailing_send_batches
from subscriptions.services.sending.send_tasks import heartbeat_key
from subscriptions.services.sending.sweep import deliveries_sweep
from tests.support.mailing_fixtures import delivery_statuses

pytestmark = pytest.mark.django_db


def test_a_429_waits_as_told_and_sends_the_same_message_without_losing_it(mailing, fake_esp, audience):
    fake_esp.fail("429", address=audience[0].email, retry_after="1")
    started = time.monotonic()
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert time.monotonic() - started >= 1.0
    assert sorted(s.to for s in fake_esp.sent) == sorted(p.email for p in audience)
    assert fake_esp.attempts == 6


def test_a_429_pauses_the_bucket_every_worker_shares(mailing, fake_esp, audience, redis_client):
    fake_esp.fail("429", address=audience[4].email, retry_after="1")
    before = float(redis_client.time()[0])
    mailing_send_batches(mailing_id=mailing.pk)
    paused_until = float(redis_client.hget(f"tidings:ratelimit:{BULK_MAILER}", "paused_until"))
    assert paused_until >= before + 1


def test_while_the_bucket_is_paused_no_worker_gets_a_slot(fake_esp):
    ratelimit_pause(mailer=BULK_MAILER, seconds=30)
    grant = ratelimit_try_take(mailer=BULK_MAILER, count=1)
    assert (grant.granted, grant.wait_seconds > 25) == (0, True)


def test_a_5xx_is_retried_with_backoff_then_sent(mailing, fake_esp, audience):
    fake_esp.fail("503", address=audience[0].email, times=2)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    assert fake_esp.attempts == 7


def test_a_connect_timeout_is_retried_then_sent(mailing, fake_esp, audience):
    fake_esp.fail("connect_timeout", address=audience[1].email)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}


def test_a_5xx_that_never_clears_fails_that_delivery_after_the_retry_limit(mailing, fake_esp, audience, settings):
    settings.SEND_RETRIES = 2
    fake_esp.fail("500", address=audience[0].email, times=99)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    failed = Delivery.objects.get(mailing=mailing, status="failed")
    assert "500" in failed.error
    assert fake_esp.attempts == 3 + 4


def test_when_the_esp_is_down_the_batch_is_given_back_not_failed(mailing, fake_esp, settings):
    settings.SEND_RETRIES = 1
    fake_esp.fail("503", times=99)
    totals = mailing_send_batches(mailing_id=mailing.pk)
    assert totals == {"failed": 2, "queued": 3}
    assert list(delivery_statuses(mailing).values()).count("queued") == 3
    mailing.refresh_from_db()
    assert mailing.status == "sending"


def test_given_back_work_is_sent_once_the_esp_recovers(mailing, fake_esp, settings, django_capture_on_commit_callbacks):
    settings.SEND_RETRIES = 0
    fake_esp.fail("503", times=2)
    mailing_send_batches(mailing_id=mailing.pk)
    cache.delete(heartbeat_key(mailing.pk))  # the rest period is over
    assert deliveries_sweep()["restarted"] == 1
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.status, progress.sent, progress.failed, progress.remaining) == ("sent", 3, 2, 0)


def test_a_permanent_4xx_fails_one_address_and_the_batch_goes_on(mailing, fake_esp, audience):
    fake_esp.fail("400", address=audience[2].email)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert delivery_statuses(mailing)[audience[2].email] == "failed"
    assert fake_esp.attempts == 5


@pytest.mark.parametrize("status", ["rejected", "failed"])
def test_a_recipient_the_esp_rejects_or_fails_in_its_answer_is_failed(mailing, fake_esp, audience, status):
    fake_esp.fail(status, address=audience[3].email)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"failed": 1, "sent": 4}
    assert delivery_statuses(mailing)[audience[3].email] == "failed"


def test_a_lost_answer_leaves_the_delivery_unknown_and_never_resends_it(mailing, fake_esp, audience):
    fake_esp.fail("read_timeout", address=audience[0].email)
    assert mailing_send_batches(mailing_id=mailing.pk) == {"unknown": 1, "sent": 4}
    deliveries_sweep()
    mailing_send_batches(mailing_id=mailing.pk)
    assert [s.to for s in fake_esp.sent].count(audience[0].email) == 1
    assert mailing_progress(mailing_id=mailing.pk).unknown == 1


def test_a_permanent_refusal_at_rcpt_is_not_retried_and_withdraws_and_suppresses_as_a_hard_bounce(
    mailing, audience, smtp_sink, settings, caplog, django_capture_on_commit_callbacks
):
    settings.SEND_RETRIES = 5
    refused = audience[2]
    reply = f"5.1.1 <{refused.email}>: Recipient address rejected: User unknown"
    smtp_sink.state.rcpt_replies[refused.email] = (550, reply)
    delivery_id = Delivery.objects.filter(mailing=mailing, subscriber_id=refused.pk).values_list("pk", flat=True)[0]
    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "failed": 1}
    assert smtp_sink.state.rcpt_seen.count(refused.email) == 1, "refused for good: asked once"
    assert Suppression.objects.get(email_hmac=email_hmac(refused.email)).reason == "hard_bounce"
    assert not Subscriber.objects.filter(pk=refused.pk).exists(), "withdrawn, then erased, as a hard bounce is"
    assert Subscriber.objects.filter(status="active").count() == 4
    assert refused.email not in caplog.text
    assert f"delivery {delivery_id}" in caplog.text


def test_a_temporary_refusal_at_rcpt_withdraws_no_one(mailing, audience, smtp_sink, settings):
    settings.SEND_RETRIES = 1
    settings.SEND_RETRY_BACKOFF_SECONDS = 0.01
    smtp_sink.state.rcpt_replies[audience[2].email] = (450, "4.2.1 mailbox busy")
    mailing_send_batches(mailing_id=mailing.pk)
    assert Subscriber.objects.filter(status="active").count() == 5
    assert not Suppression.objects.exists()


def test_a_policy_refusal_at_rcpt_fails_the_delivery_once_and_withdraws_no_one(mailing, audience, smtp_sink, settings):
    """5.7.1 is the server refusing us (a relay, a blocklist), not the address being bad."""
    settings.SEND_RETRIES = 5
    smtp_sink.state.rcpt_replies[audience[2].email] = (550, f"5.7.1 <{audience[2].email}>: Relay access denied")
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "failed": 1}
    assert smtp_sink.state.rcpt_seen.count(audience[2].email) == 1
    assert Subscriber.objects.filter(status="active").count() == 5
    assert not Suppression.objects.exists()
    assert audience[2].email not in Delivery.objects.get(mailing=mailing, status="failed").error
