import pytest

from subscriptions.models import Campaign, Delivery, Mailing
from subscriptions.services.sending.claims import deliveries_mark
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.reconcile import delivery_reconcile, mailing_progress
from subscriptions.services.sending.records import Result
from tests.support.mailing_fixtures import make_mailing

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:1])
    Mailing.objects.filter(pk=mailing.pk).update(recipients_count=mailing_fan_out(mailing=mailing))
    delivery = Delivery.objects.filter(mailing=mailing).first()
    Delivery.objects.filter(pk=delivery.pk).update(status="unknown", esp_message_id="esp-1")
    Mailing.objects.filter(pk=mailing.pk).update(unknown_count=1)
    return delivery


def counts(delivery):
    progress = mailing_progress(mailing_id=delivery.mailing_id)
    return progress.sent, progress.unknown, progress.failed, progress.bounced, progress.complained


def test_a_delivered_event_turns_unknown_into_sent_once(delivery):
    assert delivery_reconcile(delivery_id=delivery.pk, event="delivered").changed is True
    assert delivery_reconcile(delivery_id=str(delivery.pk), event="delivered").changed is False
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"
    assert counts(delivery) == (1, 0, 0, 0, 0)


def test_it_matches_by_the_esp_message_id(delivery):
    result = delivery_reconcile(esp_message_id="<esp-1>", event="delivered")
    assert (result.delivery_id, result.subscriber_id) == (delivery.pk, delivery.subscriber_id)


def test_an_id_that_names_no_delivery_falls_back_to_the_esp_message_id(delivery):
    # Mail sent before the keys were packed (migration 0008) carries an id no row has now.
    result = delivery_reconcile(delivery_id=12345, esp_message_id="esp-1", event="delivered")
    assert result.delivery_id == delivery.pk
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"


def test_a_message_id_shared_by_a_batch_names_nobody(delivery):
    other = Delivery.objects.filter(mailing=delivery.mailing).exclude(pk=delivery.pk).first()
    Delivery.objects.filter(pk=other.pk).update(status="unknown", esp_message_id="esp-1")
    assert delivery_reconcile(esp_message_id="esp-1", event="bounced") is None
    assert delivery_reconcile(delivery_id=other.pk, esp_message_id="esp-1", event="delivered").delivery_id == other.pk
    assert set(Delivery.objects.filter(esp_message_id="esp-1").values_list("status", flat=True)) == {"unknown", "sent"}


def test_a_bounce_is_counted_once_however_often_it_is_reported(delivery):
    delivery_reconcile(delivery_id=delivery.pk, event="bounced")
    delivery_reconcile(delivery_id=delivery.pk, event="bounced")
    assert counts(delivery) == (1, 0, 0, 1, 0)


def test_a_complaint_is_counted_once(delivery):
    delivery_reconcile(delivery_id=delivery.pk, event="complained")
    delivery_reconcile(esp_message_id="esp-1", event="complained")
    assert counts(delivery) == (1, 0, 0, 0, 1)


def test_a_failure_reported_by_the_esp_fails_an_unknown_delivery(delivery):
    delivery_reconcile(delivery_id=delivery.pk, event="failed")
    assert counts(delivery) == (0, 0, 1, 0, 0)


@pytest.mark.parametrize(("event", "expected"), [("bounced", (1, 0, 0, 1, 0)), ("failed", (0, 0, 1, 0, 0))])
def test_an_event_that_overtakes_the_workers_mark_settles_the_delivery_once(delivery, event, expected):
    """The ESP reports before the batch is marked: the event counts it, and the mark then leaves it alone."""
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", esp_message_id="")
    Mailing.objects.filter(pk=delivery.mailing_id).update(unknown_count=0)
    delivery_reconcile(delivery_id=delivery.pk, event=event)
    assert counts(delivery) == expected
    marked = deliveries_mark(
        mailing_id=delivery.mailing_id,
        campaign_id=delivery.mailing.campaign_id,
        results={delivery.pk: Result("sent", esp_message_id="esp-late")},
    )
    assert marked == {}
    assert counts(delivery) == expected
    # It still takes the message id, so an id a batch call shared is seen to name several people.
    assert Delivery.objects.get(pk=delivery.pk).esp_message_id == "esp-late"
    assert Delivery.objects.get(pk=delivery.pk).status == ("sent" if event == "bounced" else "failed")


def test_opens_and_clicks_are_counted_per_mailing_and_never_per_person(delivery):
    before = Delivery.objects.filter(pk=delivery.pk).values().get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sent")
    delivery_reconcile(delivery_id=delivery.pk, event="opened")
    delivery_reconcile(delivery_id=delivery.pk, event="opened")
    delivery_reconcile(delivery_id=delivery.pk, event="clicked")
    mailing = Mailing.objects.get(pk=delivery.mailing_id)
    assert (mailing.opens_count, mailing.clicks_count) == (2, 1)
    after = Delivery.objects.filter(pk=delivery.pk).values().get()
    assert {k: v for k, v in after.items() if k != "status"} == {k: v for k, v in before.items() if k != "status"}


def test_with_tracking_off_engagement_is_not_counted_at_all(delivery, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(tracking_mode=Campaign.TrackingMode.OFF)
    delivery_reconcile(delivery_id=delivery.pk, event="opened")
    mailing = Mailing.objects.get(pk=delivery.mailing_id)
    assert mailing.opens_count == 0


def test_an_event_for_no_known_delivery_is_ignored(delivery):
    assert delivery_reconcile(delivery_id=999999, event="delivered") is None
    assert delivery_reconcile(esp_message_id="nope", event="delivered") is None
    assert delivery_reconcile(delivery_id="not-a-number", event="delivered") is None


def test_an_unknown_event_name_is_refused(delivery):
    with pytest.raises(ValueError, match="nonsense"):
        delivery_reconcile(delivery_id=delivery.pk, event="nonsense")
