"""The daily retention sweep: old delivery rows go, and the retention limit erases."""

import datetime

import pytest

from subscriptions.models import DailyStat, Delivery, Mailing, Subscriber, Suppression
from subscriptions.models.mailings import delivery_id
from subscriptions.services import retention
from tests.support.factories import CampaignFactory, TopicFactory
from tests.support.lifecycle import held_intact, person_with_history
from tests.support.nothing_left import assert_nothing_left

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 9, 1, 3, 15, tzinfo=datetime.UTC)


def days_ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def mailing_finished(campaign, days: float, status=Mailing.Status.SENT, sent=3) -> Mailing:
    return Mailing.objects.create(
        campaign=campaign, subject="News", body="Hello", status=status, finished_at=days_ago(days),
        recipients_count=sent, sent_count=sent,
    )  # fmt: skip


class TestDeliveryRetention:
    @pytest.fixture
    def people(self):
        campaign = CampaignFactory(delivery_retention_days=30)
        return [
            person_with_history(campaign=campaign, email=f"d{i}@example.com", first_name="D", topics=[])
            for i in range(3)
        ]

    def deliver(self, mailing, people):
        Delivery.objects.bulk_create(
            [Delivery(id=delivery_id(mailing.pk, p.pk), mailing=mailing, subscriber=p, status="sent") for p in people]
        )

    def test_it_deletes_delivery_rows_older_than_the_campaign_keeps_them_and_the_counts_stay(self, people):
        campaign = people[0].campaign
        old, recent = mailing_finished(campaign, 31), mailing_finished(campaign, 29)
        self.deliver(old, people)
        self.deliver(recent, people)

        assert retention.deliveries_prune(now=NOW) == 3

        assert not Delivery.objects.filter(mailing=old).exists()
        assert Delivery.objects.filter(mailing=recent).count() == 3
        old.refresh_from_db()
        assert (old.recipients_count, old.sent_count) == (3, 3)
        assert Subscriber.objects.filter(campaign=campaign).count() == 3

    def test_it_uses_each_campaigns_own_age(self, people):
        brief = CampaignFactory(delivery_retention_days=7)
        other = person_with_history(campaign=brief, email="b@example.com", first_name="B", topics=[])
        self.deliver(mailing_finished(brief, 8), [other])
        self.deliver(mailing_finished(people[0].campaign, 8), people)

        assert retention.deliveries_prune(now=NOW) == 1

    def test_it_keeps_the_rows_of_a_mailing_still_sending(self, people):
        sending = mailing_finished(people[0].campaign, 90, status=Mailing.Status.SENDING)
        self.deliver(sending, people)

        assert retention.deliveries_prune(now=NOW) == 0

    def test_it_works_through_more_rows_than_one_batch(self, monkeypatch, people):
        monkeypatch.setattr(retention, "DELIVERY_PRUNE_BATCH_SIZE", 2)
        self.deliver(mailing_finished(people[0].campaign, 40), people)

        assert retention.deliveries_prune(now=NOW) == 3


class TestRetentionLimit:
    @pytest.fixture
    def campaign(self):
        return CampaignFactory(max_retention_days=1826)

    def test_it_erases_someone_whose_last_confirmation_is_older_than_the_limit(self, campaign):
        topic = TopicFactory(campaign=campaign)
        person_with_history(
            campaign=campaign, email="old.timer@example.com", first_name="Oldwin", topics=[topic],
            confirmed_at=days_ago(1827),
        )  # fmt: skip
        recent = person_with_history(
            campaign=campaign, email="new@example.com", first_name="N", topics=[topic], confirmed_at=days_ago(1825)
        )

        assert retention.retention_limit_erase(now=NOW) == 1

        assert_nothing_left("old.timer@example.com", "Oldwin")
        assert held_intact(recent)
        assert Suppression.objects.get(campaign=campaign).reason == Suppression.Reason.LAPSED
        stat = DailyStat.objects.get(campaign=campaign, metric="erasures")
        assert (stat.reason, stat.count) == ("retention_limit", 1)

    def test_a_reconfirmation_starts_the_limit_again(self, campaign):
        person = person_with_history(
            campaign=campaign, email="kept@example.com", first_name="K", topics=[], confirmed_at=days_ago(3000)
        )
        Subscriber.objects.filter(pk=person.pk).update(last_confirmed_at=days_ago(10))

        assert retention.retention_limit_erase(now=NOW) == 0

    def test_campaigns_without_a_limit_keep_people(self):
        campaign = CampaignFactory(max_retention_days=None)
        person = person_with_history(
            campaign=campaign, email="kept@example.com", first_name="K", topics=[TopicFactory(campaign=campaign)],
            confirmed_at=days_ago(9000),
        )  # fmt: skip

        assert retention.retention_limit_erase(now=NOW) == 0
        assert held_intact(person)

    def test_it_keeps_someone_on_legal_hold(self, campaign):
        person = person_with_history(
            campaign=campaign, email="held@example.com", first_name="H", topics=[TopicFactory(campaign=campaign)],
            confirmed_at=days_ago(2000), legal_hold=True,
        )  # fmt: skip

        assert retention.retention_limit_erase(now=NOW) == 0

        assert held_intact(person)
        person.refresh_from_db()
        assert person.erasure_due_at is not None
        assert person.status == Subscriber.Status.LAPSED
