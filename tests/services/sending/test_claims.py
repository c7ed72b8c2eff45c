"""Claims walk the mailing's key range from where the last claim ended, re-check each
person, and are marked once: every delivery is sent once, however many workers claim."""

import threading

import pytest
from django.db import connection, transaction

from subscriptions.addresses import email_hmac
from subscriptions.models import Delivery, Mailing, Subscriber, Suppression
from subscriptions.models.mailings import delivery_id, mailing_delivery_ids
from subscriptions.services.sending import claims, run
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.reconcile import mailing_progress
from subscriptions.services.sending.records import Result
from tests.support.factories import SubscriberFactory
from tests.support.mailing_fixtures import make_mailing, subscribe

pytestmark = pytest.mark.django_db


def started(campaign, topics):
    mailing = make_mailing(campaign, topics)
    Mailing.objects.filter(pk=mailing.pk).update(recipients_count=mailing_fan_out(mailing=mailing))
    return mailing


def keys(mailing):
    return list(Delivery.objects.of_mailing(mailing.pk).order_by("pk").values_list("pk", flat=True))


def test_a_claim_goes_on_past_the_key_it_is_given(mailing):
    first, second, third, *rest = keys(mailing)
    claimed = claims.deliveries_claim(mailing=mailing, limit=10, after=third)
    assert [row.delivery_id for row in claimed] == rest
    assert set(Delivery.objects.filter(pk__in=[first, second, third]).values_list("status", flat=True)) == {"queued"}


def test_a_claim_without_a_key_starts_at_the_mailings_first(mailing):
    claimed = claims.deliveries_claim(mailing=mailing, limit=2)
    assert [row.delivery_id for row in claimed] == keys(mailing)[:2]


def test_a_task_past_a_delivery_given_back_behind_it_still_sends_it(mailing, fake_esp):
    first, *rest = keys(mailing)
    Delivery.objects.filter(pk__in=rest).update(status="sent")  # sent by another task

    assert run.mailing_send_batches(mailing_id=mailing.pk, after=rest[-1]) == {"sent": 1}

    assert [int(message.delivery_id) for message in fake_esp.sent] == [first]
    mailing.refresh_from_db()
    assert mailing.status == "sent"


def test_a_task_out_of_time_hands_over_where_its_claims_got_to(mailing, fake_esp, settings, monkeypatch):
    settings.SEND_BATCH_SIZE = 2
    handed_over = []
    monkeypatch.setattr(run, "enqueue_send_tasks", lambda **kwargs: handed_over.append(kwargs))

    run.mailing_send_batches(mailing_id=mailing.pk, seconds=0)

    assert handed_over == [{"mailing_id": mailing.pk, "count": 1, "after": keys(mailing)[1]}]
    assert len(fake_esp.sent) == 2


def test_a_delivery_whose_person_is_gone_is_skipped_rather_than_left_sending(mailing, audience, fake_esp):
    Subscriber.objects.filter(pk=audience[0].pk).delete()  # a path that left the delivery behind

    assert run.mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "skipped": 1}

    assert Delivery.objects.get(pk=delivery_id(mailing.pk, audience[0].pk)).status == "skipped"
    mailing.refresh_from_db()
    assert mailing.status == "sent"


def test_a_claim_reads_the_key_index_from_where_it_is_told(mailing):
    first, end = mailing_delivery_ids(mailing.pk)
    sql = claims._CLAIM.format(audience="")
    params = {"after": first + 2, "end": end, "limit": 10, "topics": []}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = [row[0].strip(" ->") for row in cursor.fetchall()]
    scans = [plan[i + 1] for i, line in enumerate(plan) if "using subscriptions_delivery_pkey" in line]
    assert any(line.startswith("Index Cond: ((id >") and f"{first + 2}" in line for line in scans)


def test_a_person_saved_without_a_hash_is_still_checked_against_suppressions(campaign, topics, audience, fake_esp):
    Subscriber.objects.filter(pk=audience[0].pk).update(email_hmac="")
    Suppression.objects.create(campaign=campaign, email_hmac=email_hmac(audience[0].email), reason="complaint")
    mailing = started(campaign, topics[:1])
    run.mailing_send_batches(mailing_id=mailing.pk)
    assert audience[0].email not in {s.to for s in fake_esp.sent}


def test_progress_is_readable_while_sending(campaign, topics, audience, fake_esp, settings):
    settings.SEND_BATCH_SIZE = 2
    mailing = started(campaign, topics[:1])
    claimed = claims.deliveries_claim(mailing=mailing, limit=2)
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.status, progress.recipients, progress.sent, progress.remaining) == ("sending", 5, 0, 5)
    results = {row.delivery_id: Result("sent", "x") for row in claimed}
    claims.deliveries_mark(mailing_id=mailing.pk, campaign_id=campaign.pk, results=results)
    progress = mailing_progress(mailing_id=mailing.pk)
    assert (progress.sent, progress.remaining) == (2, 3)


def test_a_mailing_is_sent_only_when_nothing_is_queued_or_sending(campaign, topics, audience, fake_esp):
    mailing = started(campaign, topics[:1])
    claims.deliveries_claim(mailing=mailing, limit=5)
    assert claims.mailing_complete_if_done(mailing_id=mailing.pk) is False
    Delivery.objects.filter(mailing=mailing).update(status="sent")
    assert claims.mailing_complete_if_done(mailing_id=mailing.pk) is True


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
            run.mailing_send_batches(mailing_id=mailing.pk)
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
