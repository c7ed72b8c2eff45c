"""Unsubscribe emails received through the ESP's inbound webhook: who is trusted, what
withdraws, and what is ignored."""

import datetime

import pytest
from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent, EventType
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import DailyStat, Subscriber, Suppression
from subscriptions.services import webhooks
from subscriptions.services.webhooks import Outcome
from tests.support.nothing_left import assert_nothing_left
from tests.support.signup import last_mail_to
from tests.support.webhooks import EMAIL, INBOUND, NAME

pytestmark = pytest.mark.django_db


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


class TestTrust:
    def test_an_inbound_message_older_than_the_window_is_refused(self, run, person):
        event = inbound_event()
        event.timestamp = timezone.now() - datetime.timedelta(days=400)
        with pytest.raises(webhooks.WebhookEventTooOld):
            handle_inbound(run, event)
        assert Subscriber.objects.get().status == "active"
