"""The subject access export: everything held, and what UK GDPR Art. 15(1) says a person is told."""

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from subscriptions.models import Subscriber, Suppression
from subscriptions.services import data_export, privacy
from tests.support.factories import (
    CampaignFactory,
    PrivacyNoticeFactory,
    StaffUserFactory,
    SubscriberFactory,
    SubscriptionFactory,
    TopicFactory,
)

pytestmark = pytest.mark.django_db

HOLD_REASON = "Employment tribunal claim 2207/26"


@pytest.fixture
def campaign():
    campaign = CampaignFactory(
        name="Careers job alerts", ends_on=datetime.date(2027, 3, 31), pending_expiry_days=5,
        reconfirm_after_days=365, max_retention_days=730, delivery_retention_days=45,
    )  # fmt: skip
    PrivacyNoticeFactory(campaign=campaign, retention_summary="Two years after you last confirm, at most.")
    return campaign


@pytest.fixture
def person(campaign):
    subscriber = SubscriberFactory(campaign=campaign, email="ravenna.cole@example.com", first_name="Ravenna")
    SubscriptionFactory(subscriber=subscriber, topic=TopicFactory(campaign=campaign, name="Engineering jobs"))
    return subscriber


def export_of(person):
    return data_export.subscriber_data_export(subscriber_id=person.pk)


class TestWhatIsHeld:
    def test_it_includes_the_reminder_and_the_erasure_that_is_due(self, person):
        reminded, due = timezone.now() - datetime.timedelta(days=3), timezone.now()
        Subscriber.objects.filter(pk=person.pk).update(reconfirm_reminded_at=reminded, erasure_due_at=due)

        held = export_of(person)["subscriber"]

        assert held["reconfirm_reminded_at"] == reminded.isoformat()
        assert held["erasure_due_at"] == due.isoformat()

    def test_it_says_there_is_a_legal_hold_since_when_and_by_whom_without_the_reason(self, campaign, person):
        officer = StaffUserFactory(username="dana", first_name="Dana", last_name="Okafor")
        privacy.legal_hold_place(campaign_id=campaign.pk, subscriber_id=person.pk, reason=HOLD_REASON, actor=officer)

        export = export_of(person)

        hold = export["legal_hold"]
        assert hold["on_hold"] is True
        assert datetime.datetime.fromisoformat(hold["since"]) > timezone.now() - datetime.timedelta(minutes=1)
        assert "Dana Okafor" in hold["placed_by"]
        assert "reason" in hold["about"].lower()
        assert HOLD_REASON not in str(export)

    def test_no_hold_is_said_plainly(self, person):
        assert export_of(person)["legal_hold"]["on_hold"] is False

    def test_it_includes_the_suppression_entry_but_not_the_hash(self, campaign, person):
        Suppression.objects.create(campaign=campaign, email_hmac=person.email_hmac, reason=Suppression.Reason.COMPLAINT)

        export = export_of(person)

        assert export["suppression"]["reason"] == "complaint"
        assert export["suppression"]["since"]
        assert export["suppression"]["about"]
        assert person.email_hmac not in str(export)

    def test_without_a_suppression_entry_it_says_none(self, person):
        assert export_of(person)["suppression"] is None


class TestWhatThePersonIsTold:
    def test_it_gives_the_purposes(self, person):
        purposes = export_of(person)["about_your_data"]["purposes"]
        assert any("Careers job alerts" in purpose for purpose in purposes)

    @override_settings(MAILER="mailgun")
    def test_it_names_the_email_provider_as_a_recipient(self, person):
        recipients = export_of(person)["about_your_data"]["recipients"]
        assert any("Mailgun" in recipient for recipient in recipients)

    def test_it_gives_retention_from_the_privacy_notice_and_the_campaign_settings(self, person):
        retention = " ".join(export_of(person)["about_your_data"]["retention"])
        for expected in ("Two years after you last confirm", "31 March 2027", "45 days", "730 days"):
            assert expected in retention

    def test_it_lists_the_persons_rights_and_how_to_complain_to_the_ico(self, person):
        about = export_of(person)["about_your_data"]
        rights = " ".join(about["your_rights"]).lower()
        for right in ("access", "correct", "delete", "restrict", "object", "withdraw"):
            assert right in rights
        assert about["complaints"]["url"] == "https://ico.org.uk/make-a-complaint/"
        assert "Information Commissioner" in about["complaints"]["how"]
