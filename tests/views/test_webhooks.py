"""ESP webhooks over HTTP, through django-anymail's own views, as the providers post them."""

import base64
import datetime
import hashlib
import hmac
import json
import time
from importlib.util import find_spec

import pytest
from anymail.urls import urlpatterns as anymail_urlpatterns
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import Delivery, Mailing, Subscriber, Suppression, WebhookEvent
from subscriptions.tokens import make_delivery_reference
from subscriptions.views.webhooks import esp_of
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory
from tests.support.fake_sns import TOPIC as SNS_TOPIC
from tests.support.fake_sns import fake_sns
from tests.support.nothing_left import assert_nothing_left
from tests.support.signup import last_mail_to

pytestmark = pytest.mark.django_db

EMAIL = "ottilie.brackenbury@example.com"
NAME = "Ottilie"
INBOUND = "leave@jobs.example.org"
SECRET = "tidings-webhooks:correct-horse"
SIGNING_KEY = "mailgun-signing-key"


def sending_through(*esps):
    """MAILERS naming these anymail ESPs (beside the test outbox), as an operator configures them."""
    return {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}} | {
        esp: {"BACKEND": f"anymail.backends.{esp}.EmailBackend"} for esp in esps
    }


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    settings.MAILERS = sending_through("postmark", "mailgun", "sendgrid")
    settings.INBOUND_AUTHSERV_IDS = ["mx.example"]


@pytest.fixture
def delivery():
    campaign = CampaignFactory(inbound_unsubscribe=True, inbound_address=INBOUND)
    person = SubscriberFactory(campaign=campaign, email=EMAIL, first_name=NAME)
    SubscriptionFactory(subscriber=person, topic=TopicFactory(campaign=campaign))
    mailing = Mailing.objects.create(campaign=campaign, subject="Vacancies", body="Hi", status="sent", sent_count=1)
    return Delivery.objects.create(
        mailing=mailing, subscriber=person, status="sent", esp_message_id="pm-1", sent_at=timezone.now()
    )


def basic_auth(credentials=SECRET):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def postmark_bounce(delivery, bounce_type="HardBounce", event_id=4323372036854775807):
    return {
        "RecordType": "Bounce",
        "ID": event_id,
        "Type": bounce_type,
        "MessageID": "pm-1",
        "Email": EMAIL,
        "BouncedAt": timezone.now().isoformat(),
        "Metadata": {"delivery_ref": make_delivery_reference(delivery.pk)},
    }


def post_postmark(client, payload, **headers):
    url = reverse("anymail:postmark_tracking_webhook")
    return client.post(url, data=json.dumps(payload), content_type="application/json", **headers)


def mailgun_signature(key=SIGNING_KEY, at=None):
    timestamp = str(int(at if at is not None else time.time()))
    token = "tok-" + hashlib.sha1(str(time.time_ns()).encode()).hexdigest()  # noqa: S324
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


class TestTracking:
    def test_a_postmark_hard_bounce_withdraws_erases_and_suppresses(self, run, client, delivery):
        response = run(post_postmark, client, postmark_bounce(delivery), **basic_auth())
        assert response.status_code == 200
        assert Suppression.objects.get(email_hmac=email_hmac(EMAIL)).reason == "hard_bounce"
        assert Mailing.objects.get(pk=delivery.mailing_id).bounced_count == 1
        assert_nothing_left(EMAIL, NAME)

    def test_a_retried_post_of_the_same_event_acts_once(self, run, client, delivery):
        payload = postmark_bounce(delivery, bounce_type="SoftBounce")
        run(post_postmark, client, payload, **basic_auth())
        run(post_postmark, client, payload, **basic_auth())
        assert WebhookEvent.objects.count() == 1
        assert Subscriber.objects.get().status == "active", "a soft bounce withdraws no one"

    @pytest.mark.parametrize("headers", [{}, basic_auth("tidings-webhooks:wrong")])
    def test_without_the_secret_nothing_is_written(self, run, client, delivery, headers):
        response = run(post_postmark, client, postmark_bounce(delivery), **headers)
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"
        assert not WebhookEvent.objects.exists()
        assert not Suppression.objects.exists()

    def test_with_no_secret_configured_every_webhook_is_refused(self, run, client, delivery, settings):
        settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
        response = run(post_postmark, client, postmark_bounce(delivery))
        assert response.status_code == 403
        assert Subscriber.objects.get().status == "active"
        assert not WebhookEvent.objects.exists()

    def test_a_signed_mailgun_complaint_withdraws(self, run, client, delivery):
        payload = {
            "signature": mailgun_signature(),
            "event-data": {
                "event": "complained",
                "id": "mg-event-1",
                "timestamp": time.time(),
                "recipient": EMAIL,
                "message": {"headers": {"message-id": "pm-1"}},
                "user-variables": {"delivery_ref": make_delivery_reference(delivery.pk)},
            },
        }
        url = reverse("anymail:mailgun_tracking_webhook")
        response = run(client.post, url, data=json.dumps(payload), content_type="application/json", **basic_auth())
        assert response.status_code == 200
        assert Suppression.objects.get().reason == "complaint"
        assert_nothing_left(EMAIL, NAME)

    @pytest.mark.parametrize(
        ("bounce_type", "withdrawn", "with_delivery_id"),
        [("bounce", True, True), ("blocked", False, True), ("bounce", True, False)],
    )
    def test_a_sendgrid_bounce_of_a_batch_sent_delivery_is_matched(
        self, run, client, delivery, bounce_type, withdrawn, with_delivery_id
    ):
        """A batch call's events carry the person's anymail_id (stored as their message
        id) and custom_args (the delivery id) at the top level of each event; either
        one alone finds the delivery."""
        Delivery.objects.filter(pk=delivery.pk).update(esp_message_id="0b8f3c2e-anymail-id")
        event = {
            "email": EMAIL,
            "timestamp": int(time.time()),
            "event": "bounce",
            "type": bounce_type,
            "sg_event_id": f"sg-event-{bounce_type}",
            "sg_message_id": "call-id-not-per-person.filter0001",
            "anymail_id": "0b8f3c2e-anymail-id",
            "delivery_ref": make_delivery_reference(delivery.pk),
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
        }
        if not with_delivery_id:
            del event["delivery_ref"]
        url = reverse("anymail:sendgrid_tracking_webhook")
        response = run(client.post, url, data=json.dumps([event]), content_type="application/json", **basic_auth())
        assert response.status_code == 200
        assert Mailing.objects.get(pk=delivery.mailing_id).bounced_count == 1
        if withdrawn:
            assert Suppression.objects.get().reason == "hard_bounce"
            assert_nothing_left(EMAIL, NAME)
        else:
            assert Subscriber.objects.get().status == "active"

    def test_a_mailgun_event_with_a_bad_signature_is_refused_even_with_the_secret(self, run, client, delivery):
        payload = {
            "signature": mailgun_signature(key="not-the-key"),
            "event-data": {"event": "complained", "timestamp": time.time(), "recipient": EMAIL},
        }
        url = reverse("anymail:mailgun_tracking_webhook")
        response = run(client.post, url, data=json.dumps(payload), content_type="application/json", **basic_auth())
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"
        assert not WebhookEvent.objects.exists()


def mailgun_inbound(subject="unsubscribe", body="", signature=None):
    return {
        **(signature or mailgun_signature()),
        "sender": EMAIL,
        "recipient": INBOUND,
        "message-headers": json.dumps(
            [
                ["Authentication-Results", f"mx.example; dmarc=pass header.from={EMAIL.rsplit('@', 1)[1]}"],
                ["From", f"Ottilie B <{EMAIL}>"],
                ["To", INBOUND],
                ["Subject", subject],
                ["Message-Id", "<in-1@mail>"],
            ]
        ),
        "body-plain": body,
    }


class TestInbound:
    def test_an_unsubscribe_email_withdraws_the_sender_and_acknowledges(self, run, client, delivery, mailoutbox):
        response = run(client.post, reverse("anymail:mailgun_inbound_webhook"), mailgun_inbound(), **basic_auth())
        assert response.status_code == 200
        assert "You are unsubscribed" in last_mail_to(EMAIL).subject
        assert len(mailoutbox) == 1
        assert Suppression.objects.get().reason == "withdrawn"
        assert_nothing_left(EMAIL, NAME)

    def test_an_unsigned_inbound_post_writes_nothing(self, run, client, delivery, mailoutbox):
        forged = mailgun_inbound(signature={"timestamp": "1", "token": "t", "signature": "0" * 64})
        response = run(client.post, reverse("anymail:mailgun_inbound_webhook"), forged, **basic_auth())
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"
        assert mailoutbox == []

    def test_inbound_without_basic_auth_writes_nothing(self, run, client, delivery, mailoutbox):
        response = run(client.post, reverse("anymail:mailgun_inbound_webhook"), mailgun_inbound())
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"
        assert mailoutbox == []


def test_the_webhooks_set_no_cookie_and_need_no_csrf(run, delivery):
    client = Client(enforce_csrf_checks=True)
    response = run(post_postmark, client, postmark_bounce(delivery, bounce_type="SoftBounce"), **basic_auth())
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


class TestOnlyTheConfiguredEsp:
    @pytest.mark.parametrize(
        ("configured", "answers"),
        [(("mailgun",), 404), (("postmark",), 200), (("mailgun", "postmark"), 200)],
    )
    def test_only_the_endpoints_of_the_esps_we_send_through_answer(
        self, run, client, delivery, settings, configured, answers
    ):
        """Were an unsigned ESP's endpoint open beside Mailgun's, a forged event posted
        there would skip Mailgun's signature check."""
        settings.MAILERS = sending_through(*configured)
        response = run(post_postmark, client, postmark_bounce(delivery), **basic_auth())
        assert response.status_code == answers
        assert Subscriber.objects.filter(status="active").exists() is (answers == 404)
        assert WebhookEvent.objects.exists() is (answers == 200)

    def test_with_no_esp_configured_no_webhook_answers(self, run, client, delivery, settings):
        settings.MAILERS = {"default": {"BACKEND": "subscriptions.mail.outbox.OutboxBackend"}}
        for name in ("postmark_tracking_webhook", "mailgun_tracking_webhook", "amazon_ses_tracking_webhook"):
            response = run(client.post, reverse(f"anymail:{name}"), data="{}", content_type="application/json")
            assert response.status_code == 404


def mailgun_complaint(delivery, *, signature=None, at=None, event_id="mg-event-1"):
    return {
        "signature": signature or mailgun_signature(),
        "event-data": {
            "event": "complained",
            "id": event_id,
            "timestamp": at if at is not None else time.time(),
            "recipient": EMAIL,
            "message": {"headers": {"message-id": "pm-1"}},
            "user-variables": {"delivery_ref": make_delivery_reference(delivery.pk)},
        },
    }


def post_mailgun(client, payload):
    url = reverse("anymail:mailgun_tracking_webhook")
    return client.post(url, data=json.dumps(payload), content_type="application/json", **basic_auth())


DAYS_400 = 400 * 86400


class TestFreshness:
    def test_a_validly_signed_mailgun_event_400_days_old_is_refused(self, run, client, delivery, caplog):
        then = time.time() - DAYS_400
        response = run(post_mailgun, client, mailgun_complaint(delivery, signature=mailgun_signature(at=then), at=then))
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"
        assert not WebhookEvent.objects.exists()
        assert "outside WEBHOOK_MAX_AGE_SECONDS" in caplog.text

    def test_a_fresh_signature_cannot_carry_an_old_event(self, run, client, delivery):
        response = run(post_mailgun, client, mailgun_complaint(delivery, at=time.time() - DAYS_400))
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"

    def test_a_mailgun_signature_is_taken_once(self, run, client, delivery):
        """Mailgun signs a timestamp and a token, not the event: a seen signature could carry any event."""
        signature = mailgun_signature()
        delivered = mailgun_complaint(delivery, signature=signature, event_id="mg-delivered")
        delivered["event-data"]["event"] = "delivered"
        assert run(post_mailgun, client, delivered).status_code == 200
        replayed = mailgun_complaint(delivery, signature=signature, event_id="mg-complaint")
        assert run(post_mailgun, client, replayed).status_code == 400
        assert Subscriber.objects.get().status == "active"

    def test_a_window_of_a_few_days_still_takes_a_retried_event(self, run, client, delivery):
        response = run(post_mailgun, client, mailgun_complaint(delivery, at=time.time() - 2 * 86400))
        assert response.status_code == 200
        assert Suppression.objects.get().reason == "complaint"


def ses_bounce():
    """An Amazon SES bounce notification, as SES gives it to SNS."""
    now = timezone.now().isoformat()
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": EMAIL, "status": "5.1.1"}],
            "timestamp": now,
            "feedbackId": "fb-1",
        },
        "mail": {"timestamp": now, "messageId": "pm-1", "destination": [EMAIL]},
    }


def post_sns(client, body):
    return client.post(
        reverse("anymail:amazon_ses_tracking_webhook"),
        data=json.dumps(body),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=body["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=body["MessageId"],
        **basic_auth(),
    )


class TestAmazonSes:
    @pytest.fixture(autouse=True)
    def ses(self, settings):
        settings.MAILERS = sending_through("amazon_ses")
        settings.AMAZON_SES_SNS_TOPIC_ARNS = [SNS_TOPIC]
        sns = fake_sns()
        sns.install()
        return sns

    @pytest.mark.parametrize("forgery", ["another_key", "another_topic", "changed", "old", "no_topic_configured"])
    def test_an_sns_notification_sns_did_not_sign_for_our_topic_is_refused(
        self, run, client, delivery, ses, settings, forgery
    ):
        if forgery == "another_key":
            body = fake_sns().notification(ses_bounce())  # same certificate URL, another key
        elif forgery == "another_topic":
            body = ses.notification(ses_bounce(), topic="arn:aws:sns:eu-west-1:999999999999:theirs")
        elif forgery == "old":
            body = ses.notification(ses_bounce(), sent=timezone.now() - datetime.timedelta(days=400))
        else:
            body = ses.notification(ses_bounce())
        if forgery == "changed":
            body["Message"] = body["Message"].replace("Permanent", "Permanent ")
        if forgery == "no_topic_configured":
            settings.AMAZON_SES_SNS_TOPIC_ARNS = []
        response = run(post_sns, client, body)
        assert response.status_code == 400
        assert Subscriber.objects.get().status == "active"
        assert not WebhookEvent.objects.exists()

    def test_a_genuine_sns_bounce_withdraws_and_suppresses(self, run, client, delivery, ses):
        pytest.importorskip("boto3", reason="anymail's Amazon SES webhook needs boto3 (anymail[amazon-ses])")
        response = run(post_sns, client, ses.notification(ses_bounce(), version="2"))
        assert response.status_code == 200
        assert Suppression.objects.get().reason == "hard_bounce"
        assert_nothing_left(EMAIL, NAME)


def test_every_anymail_endpoint_belongs_to_an_esp_one_can_send_through():
    """A URL whose ESP no mailer could name would never answer: a renamed one would vanish silently."""
    for pattern in anymail_urlpatterns:
        assert find_spec(f"anymail.backends.{esp_of(pattern)}") is not None, pattern.name
