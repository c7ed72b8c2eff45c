"""Claims walk the mailing's key range from where the last claim ended."""

import pytest
from django.db import connection, transaction

from subscriptions.models import Delivery, Subscriber
from subscriptions.models.mailings import delivery_id, mailing_delivery_ids
from subscriptions.services import sending

pytestmark = pytest.mark.django_db


def keys(mailing):
    return list(Delivery.objects.of_mailing(mailing.pk).order_by("pk").values_list("pk", flat=True))


def test_a_claim_goes_on_past_the_key_it_is_given(mailing):
    first, second, third, *rest = keys(mailing)
    claimed = sending.deliveries_claim(mailing=mailing, limit=10, after=third)
    assert [row.delivery_id for row in claimed] == rest
    assert set(Delivery.objects.filter(pk__in=[first, second, third]).values_list("status", flat=True)) == {"queued"}


def test_a_claim_without_a_key_starts_at_the_mailings_first(mailing):
    claimed = sending.deliveries_claim(mailing=mailing, limit=2)
    assert [row.delivery_id for row in claimed] == keys(mailing)[:2]


def test_a_task_past_a_delivery_given_back_behind_it_still_sends_it(mailing, fake_esp):
    first, *rest = keys(mailing)
    Delivery.objects.filter(pk__in=rest).update(status="sent")  # sent by another task

    assert sending.mailing_send_batches(mailing_id=mailing.pk, after=rest[-1]) == {"sent": 1}

    assert [int(message.delivery_id) for message in fake_esp.sent] == [first]
    mailing.refresh_from_db()
    assert mailing.status == "sent"


def test_a_task_out_of_time_hands_over_where_its_claims_got_to(mailing, fake_esp, settings, monkeypatch):
    settings.SEND_BATCH_SIZE = 2
    handed_over = []
    monkeypatch.setattr(sending, "enqueue_send_tasks", lambda **kwargs: handed_over.append(kwargs))

    sending.mailing_send_batches(mailing_id=mailing.pk, seconds=0)

    assert handed_over == [{"mailing_id": mailing.pk, "count": 1, "after": keys(mailing)[1]}]
    assert len(fake_esp.sent) == 2


def test_a_delivery_whose_person_is_gone_is_skipped_rather_than_left_sending(mailing, audience, fake_esp):
    Subscriber.objects.filter(pk=audience[0].pk).delete()  # a path that left the delivery behind

    assert sending.mailing_send_batches(mailing_id=mailing.pk) == {"sent": 4, "skipped": 1}

    assert Delivery.objects.get(pk=delivery_id(mailing.pk, audience[0].pk)).status == "skipped"
    mailing.refresh_from_db()
    assert mailing.status == "sent"


def test_a_claim_reads_the_key_index_from_where_it_is_told(mailing):
    first, end = mailing_delivery_ids(mailing.pk)
    sql = sending._CLAIM.format(audience="")
    params = {"after": first + 2, "end": end, "limit": 10, "topics": []}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = [row[0].strip(" ->") for row in cursor.fetchall()]
    scans = [plan[i + 1] for i, line in enumerate(plan) if "using subscriptions_delivery_pkey" in line]
    assert any(line.startswith("Index Cond: ((id >") and f"{first + 2}" in line for line in scans)
