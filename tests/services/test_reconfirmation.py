"""Reconfirmation: ask once, remind once, lapse and erase the silent, renew those who answer."""

import datetime
from smtplib import SMTPRecipientsRefused
from unittest import mock

import pytest
from anymail.exceptions import AnymailRecipientsRefused
from django.core import mail

from subscriptions.models import ConsentEvent, DailyStat, Subscriber, Suppression
from subscriptions.services import reconfirmation
from subscriptions.services.reconfirmation import ReconfirmOutcome, subscriber_reconfirm
from tests.support.factories import CampaignFactory, PrivacyNoticeFactory, TopicFactory
from tests.support.lifecycle import held_intact, person_with_history
from tests.support.nothing_left import assert_nothing_left

pytestmark = pytest.mark.django_db

CONFIRMED = datetime.datetime(2025, 1, 10, 9, 0, tzinfo=datetime.UTC)
ASKED = CONFIRMED + datetime.timedelta(days=366)
EMAIL, NAME = "rowena.tilt@example.com", "Rowena"


def days_after_asking(days: float) -> datetime.datetime:
    return ASKED + datetime.timedelta(days=days)


@pytest.fixture
def campaign():
    return CampaignFactory(reconfirm_after_days=365, reconfirm_grace_days=30)


@pytest.fixture
def notice(campaign):
    return PrivacyNoticeFactory(campaign=campaign, version=1)


@pytest.fixture
def topic(campaign):
    return TopicFactory(campaign=campaign)


@pytest.fixture
def person(campaign, topic, notice):
    return person_with_history(
        campaign=campaign, email=EMAIL, first_name=NAME, topics=[topic], notice=notice, confirmed_at=CONFIRMED
    )


def sweep(at: datetime.datetime, time_machine) -> reconfirmation.ReconfirmationRun:
    time_machine.move_to(at, tick=False)
    return reconfirmation.reconfirmation_sweep()


def stat(campaign, metric: str, reason: str = "") -> int:
    row = DailyStat.objects.filter(campaign=campaign, metric=metric, reason=reason).first()
    return row.count if row else 0


class TestAsking:
    def test_it_asks_someone_whose_last_confirmation_is_older_than_the_period(self, person, time_machine):
        assert sweep(ASKED, time_machine).asked == 1

        (message,) = mail.outbox
        assert message.to == [EMAIL]
        assert "Do you still want" in message.subject
        assert "/reconfirm/" in message.body
        assert "/u/" in message.body
        assert "10 February 2026" in message.body  # 30 days' grace
        person.refresh_from_db()
        assert person.reconfirm_requested_at == ASKED

    def test_it_does_not_ask_before_the_period_is_over(self, person, time_machine):
        assert sweep(CONFIRMED + datetime.timedelta(days=364), time_machine).asked == 0

        assert mail.outbox == []

    def test_it_asks_only_once(self, person, time_machine):
        sweep(ASKED, time_machine)
        again = sweep(days_after_asking(1), time_machine)

        assert again.asked == 0
        assert len(mail.outbox) == 1

    def test_a_duplicate_task_sends_nothing(self, person, time_machine):
        time_machine.move_to(ASKED, tick=False)

        assert reconfirmation.reconfirmation_send(subscriber_id=person.pk, reminder=False)
        assert not reconfirmation.reconfirmation_send(subscriber_id=person.pk, reminder=False)

        assert len(mail.outbox) == 1

    @pytest.mark.parametrize(
        "change", [{"restricted": True}, {"status": Subscriber.Status.UNSUBSCRIBED}], ids=["restricted", "withdrawn"]
    )
    def test_it_never_mails_someone_who_receives_nothing(self, person, change, time_machine):
        Subscriber.objects.filter(pk=person.pk).update(**change)

        sweep(ASKED, time_machine)

        assert mail.outbox == []

    def test_it_ignores_campaigns_without_a_period(self, campaign, person, time_machine):
        campaign.reconfirm_after_days = None
        campaign.save()

        assert sweep(ASKED, time_machine).asked == 0

    def test_it_reminds_once_halfway_through_the_grace_period(self, person, time_machine):
        sweep(ASKED, time_machine)

        assert sweep(days_after_asking(14), time_machine).reminded == 0
        assert sweep(days_after_asking(15), time_machine).reminded == 1
        assert sweep(days_after_asking(16), time_machine).reminded == 0

        assert [m.subject.startswith("Reminder") for m in mail.outbox] == [False, True]
        assert "10 February 2026" in mail.outbox[1].body


class TestLapse:
    def test_someone_who_does_not_answer_is_lapsed_and_erased(self, campaign, person, time_machine):
        sweep(ASKED, time_machine)

        assert sweep(days_after_asking(29), time_machine).lapsed == 0
        assert sweep(days_after_asking(30), time_machine).lapsed == 1

        assert_nothing_left(EMAIL, NAME)
        assert Suppression.objects.get(campaign=campaign).reason == Suppression.Reason.LAPSED
        assert stat(campaign, "lapses") == 1
        assert stat(campaign, "erasures", "lapsed") == 1

    @pytest.mark.parametrize(
        "refusal",
        [AnymailRecipientsRefused("refused"), SMTPRecipientsRefused({EMAIL: (550, b"no such user")})],
    )
    def test_someone_whose_address_refuses_the_request_still_lapses(self, campaign, person, time_machine, refusal):
        with mock.patch("subscriptions.mail.transactional.build_email") as build:
            build.return_value.send.side_effect = refusal
            sweep(ASKED, time_machine)
        person.refresh_from_db()
        assert person.reconfirm_requested_at == ASKED
        assert sweep(days_after_asking(30), time_machine).lapsed == 1
        assert_nothing_left(EMAIL, NAME)

    def test_someone_on_legal_hold_lapses_but_is_kept_until_the_hold_lifts(self, person, time_machine):
        Subscriber.objects.filter(pk=person.pk).update(legal_hold=True, legal_hold_reason="Audit")
        sweep(ASKED, time_machine)

        assert sweep(days_after_asking(30), time_machine).lapsed == 1

        assert held_intact(person)
        person.refresh_from_db()
        assert (person.status, person.erasure_due_at is not None) == (Subscriber.Status.LAPSED, True)
        assert sweep(days_after_asking(31), time_machine).lapsed == 0

    def test_a_restricted_person_is_kept(self, person, time_machine):
        sweep(ASKED, time_machine)
        Subscriber.objects.filter(pk=person.pk).update(restricted=True)

        assert sweep(days_after_asking(60), time_machine).lapsed == 0

        assert held_intact(person)


class TestAnswering:
    def test_keeping_renews_consent_and_records_what_they_saw(self, campaign, person, topic, time_machine):
        sweep(ASKED, time_machine)
        new_notice = PrivacyNoticeFactory(campaign=campaign, version=2)
        time_machine.move_to(days_after_asking(3), tick=False)

        assert subscriber_reconfirm(subscriber_id=person.pk) == ReconfirmOutcome.KEPT

        event = ConsentEvent.objects.get(subscriber=person, kind=ConsentEvent.Kind.RECONFIRMED)
        assert (event.privacy_notice, event.topic_ids, event.source) == (new_notice, [topic.pk], "email")
        person.refresh_from_db()
        assert person.last_confirmed_at == days_after_asking(3)
        assert (person.reconfirm_requested_at, person.reconfirm_reminded_at) == (None, None)
        assert stat(campaign, "reconfirmations") == 1

    def test_someone_who_answered_is_not_lapsed_and_is_asked_again_a_period_later(self, person, time_machine):
        sweep(ASKED, time_machine)
        time_machine.move_to(days_after_asking(3), tick=False)
        subscriber_reconfirm(subscriber_id=person.pk)

        assert sweep(days_after_asking(31), time_machine).lapsed == 0
        assert sweep(days_after_asking(3 + 365), time_machine).asked == 0
        assert sweep(days_after_asking(3 + 366), time_machine).asked == 1

    def test_answering_twice_records_one_answer(self, person, time_machine):
        sweep(ASKED, time_machine)

        assert subscriber_reconfirm(subscriber_id=person.pk) == ReconfirmOutcome.KEPT
        assert subscriber_reconfirm(subscriber_id=person.pk) == ReconfirmOutcome.ALREADY

        assert ConsentEvent.objects.filter(subscriber=person, kind=ConsentEvent.Kind.RECONFIRMED).count() == 1

    def test_someone_no_longer_subscribed_cannot_answer(self, person, time_machine):
        sweep(ASKED, time_machine)
        Subscriber.objects.filter(pk=person.pk).update(status=Subscriber.Status.UNSUBSCRIBED)

        assert subscriber_reconfirm(subscriber_id=person.pk) == ReconfirmOutcome.GONE

        assert not ConsentEvent.objects.filter(subscriber=person, kind=ConsentEvent.Kind.RECONFIRMED).exists()
