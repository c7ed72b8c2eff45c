"""A send task's run: claim, send and mark every batch, with each person's own copy,
re-checking who may still be mailed; over an ESP's API and over SMTP."""

import base64

import pytest
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, DailyStat, Delivery, Mailing, Subscriber, Suppression
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.reconcile import mailing_progress
from subscriptions.services.sending.run import mailing_send_batches
from subscriptions.services.sending.stop import mailing_stop
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from subscriptions.tokens import make_delivery_reference
from tests.support.mailing_fixtures import make_mailing

pytestmark = pytest.mark.django_db


def started(campaign, topics):
    mailing = make_mailing(campaign, topics)
    Mailing.objects.filter(pk=mailing.pk).update(recipients_count=mailing_fan_out(mailing=mailing))
    return mailing


def test_it_sends_every_delivery_and_marks_the_batch(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:2])
    totals = mailing_send_batches(mailing_id=mailing.pk)
    assert totals == {"sent": 5}
    deliveries = Delivery.objects.filter(mailing=mailing)
    assert set(deliveries.values_list("status", flat=True)) == {"sent"}
    assert sorted(int(s.delivery_id) for s in fake_esp.sent) == sorted(deliveries.values_list("pk", flat=True))
    by_id = {str(d.pk): d for d in deliveries}
    assert all(by_id[s.delivery_id].esp_message_id == s.esp_message_id for s in fake_esp.sent)
    mailing.refresh_from_db()
    assert (mailing.status, mailing.sent_count) == ("sent", 5)
    assert DailyStat.objects.get(campaign=campaign, metric="sends").count == 5


def test_every_message_carries_the_unsubscribe_headers_and_its_delivery_id(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    mailing_send_batches(mailing_id=mailing.pk)
    message = fake_esp.sent[0]
    assert message.metadata == {"delivery_ref": make_delivery_reference(int(message.delivery_id))}
    assert message.headers["X-Tidings-Delivery"] == make_delivery_reference(int(message.delivery_id))
    assert message.headers["List-Unsubscribe"].startswith("<https://tidings.test/u/")
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.headers["Message-ID"].startswith(f"<{message.delivery_id}.")
    assert message.headers["Message-ID"].endswith("@police.example.org>")
    person = Subscriber.objects.get(email=message.to)
    assert f"Hello {person.first_name}," in message.text
    assert "/manage/" in message.text
    assert "/u/" in message.html


def test_it_skips_people_who_withdrew_or_were_restricted_after_fan_out(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:2])
    subscriber_withdraw(
        subscriber_id=audience[0].pk, reason=WithdrawalReason.ONE_CLICK, source=ConsentEvent.Source.EMAIL, erase=False
    )
    Subscriber.objects.filter(pk=audience[1].pk).update(restricted=True)
    audience[2].subscriptions.update(ended_at=timezone.now())
    Suppression.objects.create(campaign=campaign, email_hmac=email_hmac(audience[3].email), reason="hard_bounce")
    totals = mailing_send_batches(mailing_id=mailing.pk)
    assert totals == {"skipped": 4, "sent": 1}
    assert [s.to for s in fake_esp.sent] == [audience[4].email]
    assert mailing_progress(mailing_id=mailing.pk).skipped == 4


def test_someone_erased_after_fan_out_is_simply_gone(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    subscriber_withdraw(
        subscriber_id=audience[0].pk, reason=WithdrawalReason.ONE_CLICK, source=ConsentEvent.Source.EMAIL
    )
    mailing_send_batches(mailing_id=mailing.pk)
    assert audience[0].email not in {s.to for s in fake_esp.sent}
    assert len(fake_esp.sent) == 4


def test_a_cancelled_mailing_stops_between_batches(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    mailing_stop(mailing=mailing, reason="cancelled")
    assert mailing_send_batches(mailing_id=mailing.pk) == {}
    assert fake_esp.sent == []
    assert mailing_progress(mailing_id=mailing.pk).skipped == 5


# --- SMTP ---------------------------------------------------------------------------


def test_it_sends_pre_serialised_messages_over_smtp(campaign, topics, audience, smtp_sink):
    Subscriber.objects.filter(pk=audience[0].pk).update(first_name="Zoë <b>&</b>\r\nBcc: evil@example.com")
    mailing = started(campaign, topics[:1])
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
    received = {r.recipients[0]: r for r in smtp_sink.state.received}
    assert set(received) == {person.email for person in audience}
    message = received[audience[0].email].message()
    assert message["To"] == audience[0].email
    assert message["Bcc"] is None
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Tidings-Delivery"] == make_delivery_reference(Delivery.objects.get(subscriber=audience[0]).pk)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello Zoë <b>&</b> Bcc: evil@example.com," in text
    assert "Hello Zoë &lt;b&gt;&amp;&lt;/b&gt; Bcc: evil@example.com," in html
    delivery = Delivery.objects.get(subscriber=audience[0])
    assert message["Message-ID"] == f"<{delivery.esp_message_id}>"


def test_a_recipient_refused_over_smtp_fails_alone(campaign, topics, audience, smtp_sink):
    smtp_sink.state.rcpt_replies[audience[2].email] = (550, "5.1.1 no such user")
    mailing = started(campaign, topics[:1])
    assert mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "failed": 1}
    failed = Delivery.objects.get(mailing=mailing, status="failed")
    assert failed.subscriber_id == audience[2].pk
    assert "550" in failed.error


def test_the_smtp_bodies_are_base64_with_crlf_line_ends(campaign, topics, audience, smtp_sink):
    mailing = started(campaign, topics[:1])
    mailing_send_batches(mailing_id=mailing.pk)
    data = smtp_sink.state.received[0].data
    assert b"\n" not in data.replace(b"\r\n", b"")
    body = data.split(b"Content-Transfer-Encoding: base64\r\n\r\n")[1].split(b"\r\n--")[0]
    assert "Kent" in base64.b64decode(body).decode()
