import datetime

import pytest
from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, EventType, RejectReason
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
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory
from tests.support.nothing_left import assert_nothing_left
from tests.support.signup import last_mail_to

pytestmark = pytest.mark.django_db

EMAIL = "barnaby.quenington@example.com"
NAME = "Barnaby"
INBOUND = "unsubscribe@newsletter.example.org"


@pytest.fixture
def campaign():
    return CampaignFactory(tracking_mode="aggregate", inbound_unsubscribe=True, inbound_address=INBOUND)


@pytest.fixture
def person(campaign):
    subscriber = SubscriberFactory(campaign=campaign, email=EMAIL, first_name=NAME)
    SubscriptionFactory(subscriber=subscriber, topic=TopicFactory(campaign=campaign))
    return subscriber


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


@pytest.fixture(autouse=True)
def receiving_esp(settings):
    """Our receiving ESP writes its Authentication-Results as "mx.example"."""
    settings.INBOUND_AUTHSERV_IDS = ["mx.example"]


def authenticated(sender=EMAIL):
    return {"Authentication-Results": f"mx.example; dmarc=pass header.from={sender.rsplit('@', 1)[1]}"}


def inbound_event(*, subject="unsubscribe", text="", sender=EMAIL, to=INBOUND, headers=None, event_id="in-1"):
    message = AnymailInboundMessage.construct(
        from_email=f"Barnaby Q <{sender}>",
        to=to,
        subject=subject,
        text=text,
        headers=authenticated(sender) if headers is None else headers,
    )
    return AnymailInboundEvent(event_type=EventType.INBOUND, event_id=event_id, message=message, esp_event=None)


def handle_inbound(run, event):
    return run(webhooks.inbound_event_handle, esp_name="Mailgun", event=event)


class TestInbound:
    def test_an_unsubscribe_email_withdraws_acknowledges_and_then_erases(self, run, person, mailoutbox):
        assert handle_inbound(run, inbound_event()) == Outcome.APPLIED
        ack = last_mail_to(EMAIL)
        assert "You are unsubscribed" in ack.subject
        assert "/c/" in ack.body
        assert len(mailoutbox) == 1
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "withdrawn"
        assert DailyStat.objects.get(metric="withdrawals").reason == "inbound_email"
        assert_nothing_left(EMAIL, NAME)

    def test_the_request_may_be_in_the_body(self, run, person):
        event = inbound_event(subject="Re: Monthly news", text="Please remove me from this list.\nThanks")
        assert handle_inbound(run, event) == Outcome.APPLIED
        assert not Subscriber.objects.exists()

    def test_a_reply_quoting_our_unsubscribe_link_is_not_a_request(self, run, person, mailoutbox):
        text = "Great article, thanks!\n\nOn Tue, 3 Mar 2026, News wrote:\n> Unsubscribe: https://t.test/u/1.x/\n"
        assert handle_inbound(run, inbound_event(subject="Re: Monthly news", text=text)) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"
        assert mailoutbox == []

    def test_a_message_to_another_address_is_ignored(self, run, person):
        assert handle_inbound(run, inbound_event(to="someone@newsletter.example.org")) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"

    def test_a_campaign_that_does_not_take_unsubscribe_emails_ignores_them(self, run, person, campaign):
        campaign.inbound_unsubscribe = False
        campaign.save()
        assert handle_inbound(run, inbound_event()) == Outcome.IGNORED

    @pytest.mark.parametrize(
        "headers",
        [
            {"Auto-Submitted": "auto-replied"},
            {"Authentication-Results": "mx.example.org; spf=pass; dmarc=fail header.from=example.com"},
        ],
    )
    def test_automatic_or_forged_messages_are_ignored(self, run, person, headers):
        assert handle_inbound(run, inbound_event(headers=headers)) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authentication-Results": "mx.example; spf=none; dkim=none; dmarc=none"},
            {"Authentication-Results": "mx.example; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=a.example"},
            {"Authentication-Results": "mx.example; dmarc=pass header.from=attacker.example"},
        ],
    )
    def test_a_sender_nobody_authenticated_is_neither_withdrawn_nor_answered(self, run, person, mailoutbox, headers):
        assert handle_inbound(run, inbound_event(headers=headers)) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"
        assert mailoutbox == []
        assert DailyStat.objects.get(metric=webhooks.INBOUND_UNVERIFIED).count == 1

    def test_only_the_top_most_authentication_result_counts(self, run, person):
        message = AnymailInboundMessage.construct(
            from_email=f"Barnaby Q <{EMAIL}>", to=INBOUND, subject="unsubscribe", text=""
        )
        message["Authentication-Results"] = "mx.example; dmarc=none"
        # Added by the sender, below ours: forged, so ignored.
        message["Authentication-Results"] = f"mx.example; dmarc=pass header.from={EMAIL.rsplit('@', 1)[1]}"
        event = AnymailInboundEvent(event_type=EventType.INBOUND, event_id="in-1", message=message, esp_event=None)
        assert handle_inbound(run, event) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"

    @pytest.mark.parametrize(
        "header",
        [
            "totally-not-forged.example; dmarc=pass",
            "mx.example.evil.test; dmarc=pass",
            "(mx.example) attacker.example; dmarc=pass",
        ],
    )
    def test_a_pass_vouched_for_by_anyone_but_our_receiving_esp_is_not_trusted(self, run, person, mailoutbox, header):
        assert handle_inbound(run, inbound_event(headers={"Authentication-Results": header})) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"
        assert mailoutbox == []

    def test_a_forged_header_on_top_of_ours_is_not_read_past(self, run, person):
        """Our ESP writes its header on top: a message whose top-most one is someone
        else's did not come through our ESP's check as it claims."""
        message = AnymailInboundMessage.construct(
            from_email=f"Barnaby Q <{EMAIL}>", to=INBOUND, subject="unsubscribe", text=""
        )
        message["Authentication-Results"] = "totally-not-forged.example; dmarc=pass"
        message["Authentication-Results"] = f"mx.example; dmarc=pass header.from={EMAIL.rsplit('@', 1)[1]}"
        event = AnymailInboundEvent(event_type=EventType.INBOUND, event_id="in-1", message=message, esp_event=None)
        assert handle_inbound(run, event) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"

    def test_our_esps_header_with_a_version_and_in_another_case_is_trusted(self, run, person):
        header = {"Authentication-Results": f"MX.Example 1; dmarc=pass header.from={EMAIL.rsplit('@', 1)[1]}"}
        assert handle_inbound(run, inbound_event(headers=header)) == Outcome.APPLIED
        assert not Subscriber.objects.exists()

    def test_with_no_authserv_id_configured_no_email_withdraws_anyone(self, run, person, mailoutbox, settings, caplog):
        settings.INBOUND_AUTHSERV_IDS = []
        assert handle_inbound(run, inbound_event()) == Outcome.IGNORED
        assert Subscriber.objects.get().status == "active"
        assert mailoutbox == []
        assert "INBOUND_AUTHSERV_ID is not set" in caplog.text

    @pytest.mark.parametrize(
        "results",
        ["dkim=pass header.d={domain} header.s=s1", "spf=pass smtp.mailfrom=bounce@mail.{domain}"],
    )
    def test_an_aligned_dkim_or_spf_pass_is_enough(self, run, person, results):
        header = {"Authentication-Results": "mx.example; " + results.format(domain=EMAIL.rsplit("@", 1)[1])}
        assert handle_inbound(run, inbound_event(headers=header)) == Outcome.APPLIED
        assert not Subscriber.objects.exists()

    def test_an_unknown_sender_gets_no_reply(self, run, person, mailoutbox):
        assert handle_inbound(run, inbound_event(sender="stranger@example.com")) == Outcome.UNMATCHED
        assert mailoutbox == []

    def test_the_same_message_delivered_twice_acts_once(self, run, person, mailoutbox):
        handle_inbound(run, inbound_event())
        assert handle_inbound(run, inbound_event()) == Outcome.DUPLICATE
        assert len(mailoutbox) == 1

    def test_someone_on_legal_hold_is_acknowledged_and_kept(self, run, person, mailoutbox):
        Subscriber.objects.filter(pk=person.pk).update(legal_hold=True)
        handle_inbound(run, inbound_event())
        assert len(mailoutbox) == 1
        assert Subscriber.objects.get().status == "unsubscribed"


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

    def test_an_inbound_message_older_than_the_window_is_refused(self, run, person):
        event = inbound_event()
        event.timestamp = timezone.now() - datetime.timedelta(days=400)
        with pytest.raises(webhooks.WebhookEventTooOld):
            handle_inbound(run, event)
        assert Subscriber.objects.get().status == "active"

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
