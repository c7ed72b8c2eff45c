"""Transactional email: subjects read as written, and mail to subscribed people can be left in one click."""

import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from subscriptions.mail.transactional import build_email
from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services import preference_emails, preferences, reconfirmation
from subscriptions.services.signup import emails
from subscriptions.tokens import LinkPurpose, make_link_token
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory
from tests.support.signup import last_mail_to

pytestmark = pytest.mark.django_db

SUBJECT_TEMPLATES = sorted(
    path.name.removesuffix(".subject.txt")
    for path in (Path(settings.BASE_DIR) / "templates" / "emails").glob("*.subject.txt")
)
ONE_CLICK = "List-Unsubscribe=One-Click"


def unsubscribe_header(subscriber: Subscriber) -> str:
    token = make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=subscriber)
    return f"<{settings.SITE_URL}/u/{token}/>"


class TestSubjects:
    @pytest.mark.parametrize("template", SUBJECT_TEMPLATES)
    def test_it_keeps_ampersands_and_quotes_as_written(self, template):
        campaign = CampaignFactory(name='Tom & Jerry\'s "Cheese" <Club>')

        message = build_email(template=template, campaign=campaign, to="a@example.com", context={"reminder": True})

        assert 'Tom & Jerry\'s "Cheese" <Club>' in message.subject
        assert "&amp;" not in message.subject
        assert "&#x27;" not in message.subject

    @pytest.mark.parametrize("template", SUBJECT_TEMPLATES)
    def test_a_line_break_can_never_start_another_header(self, template):
        campaign = CampaignFactory(name="News\r\nBcc: everyone@example.com\u2028X-Evil: 1")

        message = build_email(template=template, campaign=campaign, to="a@example.com", context={})

        assert not set("\r\n\u2028") & set(message.subject)
        assert "Bcc" not in message.message()


@pytest.fixture
def campaign():
    return CampaignFactory(reconfirm_after_days=365)


@pytest.fixture
def person(campaign):
    subscriber = SubscriberFactory(campaign=campaign, email="marisol.penn@example.com", first_name="Marisol")
    SubscriptionFactory(subscriber=subscriber)
    return subscriber


def assert_one_click(message, subscriber):
    assert message.extra_headers.get("List-Unsubscribe") == unsubscribe_header(subscriber)
    assert message.extra_headers.get("List-Unsubscribe-Post") == ONE_CLICK
    # The headers must survive into the message as sent.
    assert message.message()["List-Unsubscribe-Post"] == ONE_CLICK


class TestListUnsubscribe:
    def test_the_welcome_carries_a_one_click_unsubscribe(self, person, mailoutbox):
        emails.welcome_send(subscriber_id=person.pk, topic_ids=[])

        assert_one_click(last_mail_to(person.email), person)

    def test_the_manage_link_carries_one(self, person, mailoutbox):
        preference_emails.manage_link_send(campaign_id=person.campaign_id, hashed_email=person.email_hmac)

        assert_one_click(last_mail_to(person.email), person)

    def test_a_reconfirmation_request_carries_one(self, person, mailoutbox):
        Subscriber.objects.filter(pk=person.pk).update(last_confirmed_at=timezone.now() - datetime.timedelta(days=400))

        assert reconfirmation.reconfirmation_send(subscriber_id=person.pk, reminder=False)

        assert_one_click(last_mail_to(person.email), person)

    def test_a_sign_up_by_someone_already_subscribed_carries_one(self, person, mailoutbox):
        event = ConsentEvent.objects.create(
            subscriber=person, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE,
            details={"variant": "already"},
        )  # fmt: skip

        assert emails.signup_confirmation_send(event_id=event.pk)

        assert_one_click(last_mail_to(person.email), person)

    def test_a_confirmation_request_before_any_subscription_goes_without(self, campaign, mailoutbox):
        pending = SubscriberFactory(campaign=campaign, status=Subscriber.Status.PENDING)
        event = ConsentEvent.objects.create(
            subscriber=pending, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE
        )

        assert emails.signup_confirmation_send(event_id=event.pk)

        message = last_mail_to(pending.email)
        assert "List-Unsubscribe" not in message.extra_headers
        assert "List-Unsubscribe" not in message.message()

    def test_the_new_address_of_an_email_change_gets_no_link_to_unsubscribe_the_person(self, person, run, mailoutbox):
        run(preferences.email_change_request, subscriber_id=person.pk, new_email="new.inbox@example.com")

        message = last_mail_to("new.inbox@example.com")
        assert "List-Unsubscribe" not in message.message()
