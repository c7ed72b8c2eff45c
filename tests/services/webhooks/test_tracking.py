"""Tracking events from the ESP's webhooks: withdrawals, acting once, reconciling unknown
deliveries, engagement counts, and which events are trusted."""

import datetime

import pytest
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.apps import apps
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import (
    ConsentEvent,
    DailyStat,
    Delivery,
    LinkClickCount,
    Mailing,
    Subscriber,
    Suppression,
    WebhookEvent,
)
from subscriptions.services import webhooks
from subscriptions.services.webhooks import Outcome
from subscriptions.tokens import make_delivery_reference
from tests.support.nothing_left import assert_nothing_left
from tests.support.webhooks import EMAIL, NAME

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(campaign, person):
    mailing = Mailing.objects.create(campaign=campaign, subject="Monthly news", body="Hi", status="sent", sent_count=1)
    return Delivery.objects.create(
        mailing=mailing, subscriber=person, status="sent", esp_message_id="esp-1", sent_at=timezone.now()
    )


def tracking_event(event_type, delivery=None, *, event_id="evt-1", esp_event=None, **kwargs):
    return AnymailTrackingEvent(
        event_type=event_type,
        event_id=event_id,
        metadata={"delivery_ref": make_delivery_reference(delivery.pk)} if delivery else {},
        recipient=EMAIL,
        esp_event=esp_event if esp_event is not None else {"id": event_id},
        **kwargs,
    )


def handle(run, event, esp_name="Postmark"):
    return run(webhooks.tracking_event_handle, esp_name=esp_name, event=event)


def make_unknown(delivery):
    """As the sweeper leaves a delivery whose worker was lost mid-send."""
    Delivery.objects.filter(pk=delivery.pk).update(status="unknown", sent_at=None)
    Mailing.objects.filter(pk=delivery.mailing_id).update(unknown_count=1, sent_count=0)


def mailing_counts(delivery):
    mailing = Mailing.objects.get(pk=delivery.mailing_id)
    return {
        "bounced": mailing.bounced_count,
        "complained": mailing.complained_count,
        "opens": mailing.opens_count,
        "clicks": mailing.clicks_count,
    }


def row_counts():
    return {model._meta.db_table: model.objects.count() for model in apps.get_models()}


class TestWithdrawingEvents:
    def test_a_hard_bounce_marks_bounced_erases_and_suppresses(self, run, delivery, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            outcome = webhooks.tracking_event_handle(
                esp_name="Postmark", event=tracking_event(EventType.BOUNCED, delivery, esp_event={"Type": "HardBounce"})
            )
        assert outcome == Outcome.APPLIED
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "bounced"
        for callback in queued:
            callback()
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "hard_bounce"
        assert DailyStat.objects.get(metric="withdrawals").reason == "hard_bounce"
        assert Mailing.objects.get(pk=delivery.mailing_id).bounced_count == 1
        assert_nothing_left(EMAIL, NAME)

    def test_a_soft_bounce_withdraws_no_one(self, run, delivery):
        handle(run, tracking_event(EventType.BOUNCED, delivery, esp_event={"Type": "SoftBounce"}))
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"

    def test_an_amazon_ses_transient_bounce_withdraws_no_one(self, run, delivery):
        event = tracking_event(EventType.BOUNCED, delivery, esp_event={"bounce": {"bounceType": "Transient"}})
        handle(run, event, esp_name="Amazon SES")
        assert Subscriber.objects.get(pk=delivery.subscriber_id).status == "active"

    def test_a_complaint_withdraws_erases_and_suppresses(self, run, delivery):
        assert handle(run, tracking_event(EventType.COMPLAINED, delivery)) == Outcome.APPLIED
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "complaint"
        assert mailing_counts(delivery)["complained"] == 1
        assert_nothing_left(EMAIL, NAME)

    def test_an_unsubscribe_at_the_esp_withdraws(self, run, delivery):
        handle(run, tracking_event(EventType.UNSUBSCRIBED, delivery))
        assert not Subscriber.objects.exists()
        assert DailyStat.objects.get(metric="withdrawals").reason == "esp_unsubscribe"
        assert_nothing_left(EMAIL, NAME)

    @pytest.mark.parametrize(
        ("reject_reason", "suppressed_as"),
        [
            (RejectReason.BOUNCED, "hard_bounce"),
            (RejectReason.SPAM, "complaint"),
            (RejectReason.INVALID, "hard_bounce"),
        ],
    )
    def test_a_refusal_because_of_the_address_history_withdraws(self, run, delivery, reject_reason, suppressed_as):
        handle(run, tracking_event(EventType.REJECTED, delivery, reject_reason=reject_reason))
        assert Suppression.objects.get().reason == suppressed_as

    def test_a_refusal_for_other_reasons_only_fails_the_delivery(self, run, delivery):
        make_unknown(delivery)
        handle(run, tracking_event(EventType.REJECTED, delivery, reject_reason=RejectReason.BLOCKED))
        assert Delivery.objects.get(pk=delivery.pk).status == "failed"
        assert Subscriber.objects.get().status == "active"


class TestOnce:
    def test_a_repeated_event_is_acted_on_once(self, run, delivery):
        make_unknown(delivery)
        assert handle(run, tracking_event(EventType.OPENED, delivery)) == Outcome.APPLIED
        assert handle(run, tracking_event(EventType.OPENED, delivery)) == Outcome.DUPLICATE
        assert mailing_counts(delivery)["opens"] == 1
        assert WebhookEvent.objects.get().event_id == "evt-1"

    def test_the_same_event_id_from_another_esp_is_another_event(self, run, delivery):
        handle(run, tracking_event(EventType.OPENED, delivery), esp_name="Postmark")
        handle(run, tracking_event(EventType.OPENED, delivery), esp_name="Mailgun")
        assert mailing_counts(delivery)["opens"] == 2

    def test_events_without_an_id_are_told_apart_by_their_content(self, run, delivery):
        first = tracking_event(EventType.OPENED, delivery, event_id=None, esp_event={"ReceivedAt": "10:00"})
        retry = tracking_event(EventType.OPENED, delivery, event_id=None, esp_event={"ReceivedAt": "10:00"})
        later = tracking_event(EventType.OPENED, delivery, event_id=None, esp_event={"ReceivedAt": "11:00"})
        assert [handle(run, event) for event in (first, retry, later)] == [
            Outcome.APPLIED,
            Outcome.DUPLICATE,
            Outcome.APPLIED,
        ]
        assert EMAIL not in str(list(WebhookEvent.objects.values_list("event_id", flat=True)))

    def test_a_failure_while_acting_forgets_the_event_so_the_retry_acts(self, run, delivery, monkeypatch):
        def broken(**kwargs):
            raise ConnectionError("database went away")

        monkeypatch.setattr(webhooks, "subscriber_withdraw", broken)
        with pytest.raises(ConnectionError):
            handle(run, tracking_event(EventType.COMPLAINED, delivery))
        assert not WebhookEvent.objects.exists()
        monkeypatch.undo()
        assert handle(run, tracking_event(EventType.COMPLAINED, delivery)) == Outcome.APPLIED


class TestReconcile:
    def test_a_delivered_event_settles_an_unknown_delivery(self, run, delivery):
        make_unknown(delivery)
        handle(run, tracking_event(EventType.DELIVERED, delivery))
        mailing = Mailing.objects.get(pk=delivery.mailing_id)
        assert (mailing.unknown_count, mailing.sent_count) == (0, 1)
        assert Delivery.objects.get(pk=delivery.pk).status == "sent"

    def test_it_matches_by_message_id_when_there_is_no_metadata(self, run, delivery):
        handle(run, tracking_event(EventType.COMPLAINED, message_id="<esp-1>"))
        assert Suppression.objects.get().reason == "complaint"

    def test_an_event_for_no_known_delivery_changes_nothing_else(self, run, delivery):
        before = row_counts()
        assert handle(run, tracking_event(EventType.COMPLAINED, message_id="<unknown>")) == Outcome.UNMATCHED
        assert {table: n for table, n in row_counts().items() if before[table] != n} == {
            "subscriptions_webhookevent": 1
        }
        assert Subscriber.objects.get().status == "active"


class TestEngagement:
    def test_opens_and_clicks_are_counts_and_never_a_row_about_a_person(self, run, delivery):
        before = row_counts()
        handle(run, tracking_event(EventType.OPENED, delivery, event_id="o1"))
        handle(run, tracking_event(EventType.CLICKED, delivery, event_id="c1", click_url="https://example.org/jobs"))
        handle(run, tracking_event(EventType.CLICKED, delivery, event_id="c2", click_url="https://example.org/jobs"))
        changed = {table: n - before[table] for table, n in row_counts().items() if before[table] != n}
        assert changed == {"subscriptions_webhookevent": 3, "subscriptions_linkclickcount": 1}
        assert mailing_counts(delivery) == {"bounced": 0, "complained": 0, "opens": 1, "clicks": 2}
        link = LinkClickCount.objects.get()
        assert (link.url, link.count) == ("https://example.org/jobs", 2)

    def test_a_click_on_a_personal_link_is_counted_without_its_token(self, run, delivery, settings):
        url = f"{settings.SITE_URL}/u/{delivery.subscriber_id}.SecretTokenValue/"
        handle(run, tracking_event(EventType.CLICKED, delivery, click_url=url))
        link = LinkClickCount.objects.get()
        assert "SecretTokenValue" not in link.url
        assert str(delivery.subscriber_id) not in link.url.removeprefix(settings.SITE_URL)

    def test_with_tracking_off_nothing_is_counted(self, run, delivery, campaign):
        campaign.tracking_mode = "off"
        campaign.save()
        handle(run, tracking_event(EventType.OPENED, delivery, event_id="o1"))
        handle(run, tracking_event(EventType.CLICKED, delivery, event_id="c1", click_url="https://example.org/"))
        assert mailing_counts(delivery) == {"bounced": 0, "complained": 0, "opens": 0, "clicks": 0}
        assert not LinkClickCount.objects.exists()

    def test_with_tracking_off_a_complaint_still_withdraws(self, run, delivery, campaign):
        campaign.tracking_mode = "off"
        campaign.save()
        handle(run, tracking_event(EventType.COMPLAINED, delivery))
        assert not Subscriber.objects.exists()


def test_old_event_ids_are_pruned():
    old = WebhookEvent.objects.create(esp="Postmark", event_id="old")
    WebhookEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=31))
    WebhookEvent.objects.create(esp="Postmark", event_id="new")
    assert webhooks.webhook_events_prune() == 1
    assert list(WebhookEvent.objects.values_list("event_id", flat=True)) == ["new"]


def test_withdrawal_events_are_recorded_with_the_esp_as_source(run, delivery):
    handle(run, tracking_event(EventType.COMPLAINED, delivery), esp_name="Postmark")
    # Erased, so the evidence is gone; the count keeps the reason.
    assert not ConsentEvent.objects.exists()
    assert DailyStat.objects.get(metric="erasures").reason == "complaint"


class TestTrust:
    def test_an_event_older_than_the_window_is_refused_and_changes_nothing(self, run, delivery, caplog):
        old = tracking_event(EventType.COMPLAINED, delivery, timestamp=timezone.now() - datetime.timedelta(days=400))
        with pytest.raises(webhooks.WebhookEventTooOld):
            handle(run, old)
        assert not WebhookEvent.objects.exists()
        assert Subscriber.objects.get().status == "active"
        assert "outside WEBHOOK_MAX_AGE_SECONDS" in caplog.text

    def test_an_event_dated_inside_the_window_is_applied(self, run, delivery):
        recent = tracking_event(EventType.COMPLAINED, delivery, timestamp=timezone.now() - datetime.timedelta(days=2))
        assert handle(run, recent) == Outcome.APPLIED
        assert not Subscriber.objects.exists()

    @pytest.mark.parametrize(
        "metadata",
        [
            {"delivery_id": "{pk}"},  # what every recipient saw in X-Tidings-Delivery before
            {"delivery_ref": "{pk}"},
            {"delivery_ref": "{pk}.AAAAAAAAAAAAAAAA"},
            {"delivery_ref": "{other}"},
        ],
    )
    def test_a_complaint_naming_a_guessed_delivery_erases_no_one(self, run, delivery, metadata):
        other = make_delivery_reference(delivery.pk + 1)
        forged = AnymailTrackingEvent(
            event_type=EventType.COMPLAINED,
            event_id="forged-1",
            metadata={key: value.format(pk=delivery.pk, other=other) for key, value in metadata.items()},
            recipient="attacker@example.net",
            esp_event={"id": "forged-1"},
        )
        assert handle(run, forged) == Outcome.UNMATCHED
        assert Subscriber.objects.get().status == "active"
        assert not Suppression.objects.exists()

    def test_an_unverified_reference_falls_back_to_the_esp_message_id(self, run, delivery):
        event = AnymailTrackingEvent(
            event_type=EventType.COMPLAINED,
            event_id="evt-9",
            metadata={"delivery_ref": f"{delivery.pk}.AAAAAAAAAAAAAAAA"},
            message_id="esp-1",
            recipient=EMAIL,
            esp_event={"id": "evt-9"},
        )
        assert handle(run, event) == Outcome.APPLIED
        assert Suppression.objects.get().reason == "complaint"
