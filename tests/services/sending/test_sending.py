import base64
import itertools
import threading

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, connection
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import ConsentEvent, DailyStat, Delivery, Mailing, Subscriber, Suppression
from subscriptions.services import sending
from subscriptions.services.sending.reconcile import mailing_progress
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from subscriptions.tokens import make_delivery_reference
from tests.support.factories import CampaignFactory, SubscriberFactory
from tests.support.mailing_fixtures import make_mailing, subscribe

pytestmark = pytest.mark.django_db


def recipients(mailing):
    return set(Delivery.objects.filter(mailing=mailing).values_list("subscriber_id", flat=True))


# --- Fan-out ------------------------------------------------------------------------


def test_fan_out_makes_one_delivery_per_person_however_many_topics_match(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:2])
    assert sending.mailing_fan_out(mailing=mailing) == 5
    assert recipients(mailing) == {person.pk for person in audience}


def test_fan_out_leaves_out_everyone_who_must_not_be_mailed(campaign, topics, audience):
    pending = SubscriberFactory(campaign=campaign, status=Subscriber.Status.PENDING)
    gone = SubscriberFactory(campaign=campaign, status=Subscriber.Status.UNSUBSCRIBED)
    restricted = SubscriberFactory(campaign=campaign, restricted=True)
    suppressed = SubscriberFactory(campaign=campaign)
    Suppression.objects.create(campaign=campaign, email_hmac=email_hmac(suppressed.email), reason="complaint")
    ended = SubscriberFactory(campaign=campaign)
    subscribe(ended, topics[0], ended=True)
    other_topic = SubscriberFactory(campaign=campaign)
    subscribe(other_topic, topics[2])
    for person in (pending, gone, restricted, suppressed):
        subscribe(person, topics[0])
    mailing = make_mailing(campaign, topics[:2])
    sending.mailing_fan_out(mailing=mailing)
    assert recipients(mailing) == {person.pk for person in audience}


def test_a_suppression_in_another_campaign_does_not_count(campaign, topics, audience):
    other = CampaignFactory()
    Suppression.objects.create(campaign=other, email_hmac=email_hmac(audience[0].email), reason="complaint")
    mailing = make_mailing(campaign, topics[:1])
    assert sending.mailing_fan_out(mailing=mailing) == 5


def test_a_service_notice_goes_to_every_active_subscriber_whatever_their_topics(campaign, topics, audience):
    no_topics = SubscriberFactory(campaign=campaign)
    SubscriberFactory(campaign=campaign, restricted=True)
    SubscriberFactory(campaign=CampaignFactory())
    mailing = make_mailing(campaign, [], kind=Mailing.Kind.SERVICE_NOTICE)
    sending.mailing_fan_out(mailing=mailing)
    assert recipients(mailing) == {person.pk for person in audience} | {no_topics.pk}


def test_fanning_out_again_adds_nobody(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:1])
    sending.mailing_fan_out(mailing=mailing)
    assert sending.mailing_fan_out(mailing=mailing) == 5
    assert Delivery.objects.filter(mailing=mailing).count() == 5


@pytest.fixture
def mixed_audience(campaign, topics):
    """30 followers of topics[0] among people who must not get it, ids interleaved."""
    wanted = set()
    for i in range(60):
        person = SubscriberFactory(campaign=campaign, restricted=i % 6 == 5)
        if i % 2 == 0:
            subscribe(person, topics[0])
            if i % 6 != 5:
                wanted.add(person.pk)
        else:
            subscribe(person, topics[2])
    return wanted


@pytest.mark.django_db(transaction=True)
def test_a_large_fan_out_runs_in_ranges_at_once_and_picks_the_same_people(
    campaign, topics, mixed_audience, settings, django_assert_num_queries
):
    settings.FANOUT_PARALLEL_FROM = 10
    settings.FANOUT_PARALLELISM = 1
    whole = make_mailing(campaign, topics[:1])
    assert sending.mailing_fan_out(mailing=whole) == len(mixed_audience)
    settings.FANOUT_PARALLELISM = 4
    assert len(sending._fan_out_ranges(campaign.pk)) == 4
    sliced = make_mailing(campaign, topics[:1])
    # On this connection only the audience's topics, the id range and the count of
    # earlier rows: each range's INSERT runs on a connection of its own.
    with django_assert_num_queries(3):
        assert sending.mailing_fan_out(mailing=sliced) == len(mixed_audience)
    assert recipients(sliced) == recipients(whole) == mixed_audience
    ids = list(Subscriber.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    ranges = sending._fan_out_ranges(campaign.pk)
    assert ranges[0][0] == ids[0]
    assert ranges[-1][1] == ids[-1]
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges)), "no gap, no overlap"


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_range_that_fails_is_completed_by_the_next_attempt_without_duplicates(
    campaign, topics, mixed_audience, settings, monkeypatch
):
    mailing, ranges = _due_in_ranges(campaign, topics, settings, parallelism=3)
    # The last range's statement fails (a bound that is not a number); the others commit.
    monkeypatch.setattr(sending, "_fan_out_ranges", lambda campaign_id: [*ranges[:2], ("x", "x")])
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
        sending.mailing_start(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED, "the mailing's own change rolled back"
    partial = recipients(mailing)
    assert partial
    assert partial < mixed_audience
    monkeypatch.setattr(sending, "_fan_out_ranges", lambda campaign_id: ranges)
    _assert_started_and_sent_once(mailing, mixed_audience)


@pytest.mark.django_db(transaction=True)
def test_an_attempt_completing_an_earlier_one_counts_rows_that_commit_while_it_runs(
    campaign, topics, mixed_audience, settings, monkeypatch
):
    # ON CONFLICT skips such rows without counting them: the count is taken afresh.
    mailing, ranges = _due_in_ranges(campaign, topics, settings, parallelism=2)
    first, second = sorted(mixed_audience)[:2]
    Delivery.objects.create(mailing=mailing, subscriber_id=first)  # an earlier attempt's row

    def ranges_after_the_count(campaign_id):
        _commit_delivery_elsewhere(mailing, second)
        return ranges

    monkeypatch.setattr(sending, "_fan_out_ranges", ranges_after_the_count)
    _assert_started_and_sent_once(mailing, mixed_audience)


def _commit_delivery_elsewhere(mailing, subscriber_id):
    """A delivery committed on another connection, as a lost caller's range would."""

    def commit() -> None:
        try:
            Delivery.objects.create(mailing_id=mailing.pk, subscriber_id=subscriber_id)
        finally:
            connection.close()

    committer = threading.Thread(target=commit)
    committer.start()
    committer.join()


def _due_in_ranges(campaign, topics, settings, *, parallelism):
    """A due mailing to topics[0], and the id ranges its fan-out runs in."""
    settings.FANOUT_PARALLEL_FROM = 10
    settings.FANOUT_PARALLELISM = parallelism
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    return mailing, sending._fan_out_ranges(campaign.pk)


def _assert_started_and_sent_once(mailing, audience):
    assert sending.mailing_start(mailing_id=mailing.pk)  # its send tasks run at commit (eager)
    mailing.refresh_from_db()
    assert (mailing.recipients_count, mailing.sent_count) == (len(audience), len(audience))
    assert mailing.status == Mailing.Status.SENT
    assert Delivery.objects.filter(mailing=mailing).count() == len(audience)
    assert recipients(mailing) == audience


@pytest.mark.django_db(transaction=True)
def test_rows_that_appear_after_the_count_fail_the_attempt_rather_than_mail_anyone_twice(
    campaign, topics, mixed_audience, settings, monkeypatch
):
    # A first attempt inserts without ON CONFLICT; the primary key (the pair) is what stops
    # a row committed meanwhile (say by a lost caller's range) from being doubled.
    mailing, ranges = _due_in_ranges(campaign, topics, settings, parallelism=2)
    early = min(mixed_audience)

    def ranges_after_the_count(campaign_id):
        _commit_delivery_elsewhere(mailing, early)
        return ranges

    monkeypatch.setattr(sending, "_fan_out_ranges", ranges_after_the_count)
    with pytest.raises(IntegrityError):
        sending.mailing_start(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED
    assert Delivery.objects.filter(mailing=mailing, subscriber_id=early).count() == 1
    monkeypatch.setattr(sending, "_fan_out_ranges", lambda campaign_id: ranges)
    _assert_started_and_sent_once(mailing, mixed_audience)


def test_starting_a_due_mailing_fans_out_once_and_sends(
    campaign, topics, audience, fake_esp, django_capture_on_commit_callbacks
):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert sending.mailings_dispatch_due() == 1
    assert sending.mailing_start(mailing_id=mailing.pk) is False
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
    fan_out = sending.mailing_fan_out

    def failing_for_the_first(*, mailing):
        if mailing.pk == first.pk:  # a real database error, in the start's own transaction
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        return fan_out(mailing=mailing)

    monkeypatch.setattr(sending, "mailing_fan_out", failing_for_the_first)
    assert sending.mailings_dispatch_due() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    # An error that will not pass by itself: back to draft, with the reason for staff
    # (tests/services/test_mailing_start_failure.py); a lost database stays scheduled.
    assert first.status == Mailing.Status.DRAFT
    assert not Delivery.objects.filter(mailing=first).exists()
    assert (second.status, second.recipients_count) == (Mailing.Status.SENT, 5)
    assert f"mailing {first.pk} could not start" in caplog.text
    monkeypatch.setattr(sending, "mailing_fan_out", fan_out)
    Mailing.objects.filter(pk=first.pk).update(status=Mailing.Status.SCHEDULED, scheduled_at=now)
    assert sending.mailings_dispatch_due() == 1
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

    monkeypatch.setattr(sending, "mailing_start", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        sending.mailings_dispatch_due()
    assert len(calls) == 1


def test_a_mailing_scheduled_for_later_is_not_started(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now() + timezone.timedelta(hours=1))
    assert sending.mailings_dispatch_due() == 0
    assert not Delivery.objects.filter(mailing=mailing).exists()


def test_a_mailing_with_nobody_to_send_to_is_sent_at_once(campaign, topics):
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    sending.mailings_dispatch_due()
    mailing.refresh_from_db()
    assert (mailing.status, mailing.recipients_count) == ("sent", 0)


# --- Claim, send, mark ----------------------------------------------------------------


def started(campaign, topics):
    mailing = make_mailing(campaign, topics)
    Mailing.objects.filter(pk=mailing.pk).update(recipients_count=sending.mailing_fan_out(mailing=mailing))
    return mailing


def test_it_sends_every_delivery_and_marks_the_batch(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:2])
    totals = sending.mailing_send_batches(mailing_id=mailing.pk)
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
    sending.mailing_send_batches(mailing_id=mailing.pk)
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
    totals = sending.mailing_send_batches(mailing_id=mailing.pk)
    assert totals == {"skipped": 4, "sent": 1}
    assert [s.to for s in fake_esp.sent] == [audience[4].email]
    assert mailing_progress(mailing_id=mailing.pk).skipped == 4


def test_someone_erased_after_fan_out_is_simply_gone(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    subscriber_withdraw(
        subscriber_id=audience[0].pk, reason=WithdrawalReason.ONE_CLICK, source=ConsentEvent.Source.EMAIL
    )
    sending.mailing_send_batches(mailing_id=mailing.pk)
    assert audience[0].email not in {s.to for s in fake_esp.sent}
    assert len(fake_esp.sent) == 4


def test_a_person_saved_without_a_hash_is_still_checked_against_suppressions(campaign, topics, audience, fake_esp):
    Subscriber.objects.filter(pk=audience[0].pk).update(email_hmac="")
    Suppression.objects.create(campaign=campaign, email_hmac=email_hmac(audience[0].email), reason="complaint")
    mailing = started(campaign, topics[:1])
    sending.mailing_send_batches(mailing_id=mailing.pk)
    assert audience[0].email not in {s.to for s in fake_esp.sent}


def test_progress_is_readable_while_sending(campaign, topics, audience, fake_esp, settings):
    settings.SEND_BATCH_SIZE = 2
    mailing = started(campaign, topics[:1])
    claimed = sending.deliveries_claim(mailing=mailing, limit=2)
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.status, progress.recipients, progress.sent, progress.remaining) == ("sending", 5, 0, 5)
    results = {row.delivery_id: sending.Result("sent", "x") for row in claimed}
    sending.deliveries_mark(mailing_id=mailing.pk, campaign_id=campaign.pk, results=results)
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.sent, progress.remaining) == (2, 3)


def test_a_mailing_is_sent_only_when_nothing_is_queued_or_sending(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    sending.deliveries_claim(mailing=mailing, limit=5)
    assert sending.mailing_complete_if_done(mailing_id=mailing.pk) is False
    Delivery.objects.filter(mailing=mailing).update(status="sent")
    assert sending.mailing_complete_if_done(mailing_id=mailing.pk) is True


def test_a_cancelled_mailing_stops_between_batches(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    sending.mailing_stop(mailing=mailing, reason="cancelled")
    assert sending.mailing_send_batches(mailing_id=mailing.pk) == {}
    assert fake_esp.sent == []
    assert mailing_progress(mailing_id=mailing.pk).skipped == 5


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_each_delivery_exactly_once(campaign, topics, fake_esp, settings):
    settings.SEND_BATCH_SIZE = 7
    people = SubscriberFactory.create_batch(120, campaign=campaign)
    for person in people:
        subscribe(person, topics[0])
    mailing = started(campaign, topics[:1])
    errors = []

    def worker():
        try:
            sending.mailing_send_batches(mailing_id=mailing.pk)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    sent_ids = [s.delivery_id for s in fake_esp.sent]
    assert len(sent_ids) == len(set(sent_ids)) == 120
    mailing.refresh_from_db()
    assert (mailing.status, mailing.sent_count) == ("sent", 120)


# --- SMTP ---------------------------------------------------------------------------


def test_it_sends_pre_serialised_messages_over_smtp(campaign, topics, audience, smtp_sink):
    Subscriber.objects.filter(pk=audience[0].pk).update(first_name="Zoë <b>&</b>\r\nBcc: evil@example.com")
    mailing = started(campaign, topics[:1])
    assert sending.mailing_send_batches(mailing_id=mailing.pk) == {"sent": 5}
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
    assert sending.mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "failed": 1}
    failed = Delivery.objects.get(mailing=mailing, status="failed")
    assert failed.subscriber_id == audience[2].pk
    assert "550" in failed.error


def test_the_smtp_bodies_are_base64_with_crlf_line_ends(campaign, topics, audience, smtp_sink):
    mailing = started(campaign, topics[:1])
    sending.mailing_send_batches(mailing_id=mailing.pk)
    data = smtp_sink.state.received[0].data
    assert b"\n" not in data.replace(b"\r\n", b"")
    body = data.split(b"Content-Transfer-Encoding: base64\r\n\r\n")[1].split(b"\r\n--")[0]
    assert "Kent" in base64.b64decode(body).decode()
