"""Campaign end: sending stops, everyone is erased in batches, counts stay, and it happens once."""

import datetime
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from subscriptions.models import (
    AuditEvent,
    Campaign,
    ConsentEvent,
    DailyStat,
    Delivery,
    Mailing,
    Subscriber,
    Suppression,
)
from subscriptions.services import erasure, lifecycle, preferences, privacy, withdrawal
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.signup.request import CampaignClosed, signup_request
from subscriptions.services.stats import stat_increment
from tests.support.factories import CampaignFactory, SignupFormFactory, StaffUserFactory, TopicFactory
from tests.support.lifecycle import held_intact, person_with_history
from tests.support.nothing_left import assert_nothing_left

pytestmark = pytest.mark.django_db

LAST_DAY = datetime.date(2026, 6, 30)
DAY_AFTER = datetime.date(2026, 7, 1)
PEOPLE = [("ada.quill@example.com", "Adaline"), ("bo.marsh@example.com", "Bohdana"), ("cy.fenn@example.org", "Cyprian")]


@pytest.fixture
def campaign():
    return CampaignFactory(ends_on=LAST_DAY)


@pytest.fixture
def topics(campaign):
    return [TopicFactory(campaign=campaign), TopicFactory(campaign=campaign)]


@pytest.fixture
def sent_mailing(campaign, topics):
    return Mailing.objects.create(campaign=campaign, subject="News", body="Hello", status=Mailing.Status.SENT)


@pytest.fixture
def people(campaign, topics, sent_mailing):
    return [
        person_with_history(campaign=campaign, email=email, first_name=name, topics=topics, mailing=sent_mailing)
        for email, name in PEOPLE
    ]


def erasures(campaign, reason="campaign_ended") -> int:
    row = DailyStat.objects.filter(campaign=campaign, metric="erasures", reason=reason).first()
    return row.count if row else 0


class TestCampaignEnd:
    def test_it_erases_everyone_once_the_last_day_has_passed_leaving_nothing(self, campaign, people):
        result = lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        assert (result.erased, result.held, result.complete) == (3, 0, True)
        for email, name in PEOPLE:
            assert_nothing_left(email, name)
        assert not Subscriber.objects.filter(campaign=campaign).exists()
        assert not Delivery.objects.filter(mailing__campaign=campaign).exists()
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.ERASED

    def test_it_leaves_no_address_hashes_behind(self, campaign, people):
        # An ended campaign sends nothing and takes no sign-ups: a suppression list
        # would protect nobody and outlive the campaign.
        pending = person_with_history(
            campaign=campaign, email="never.confirmed@example.com", first_name="Pending", topics=[],
            status=Subscriber.Status.PENDING,
        )  # fmt: skip

        lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        assert not Suppression.objects.filter(campaign=campaign).exists()
        assert not Subscriber.objects.filter(pk=pending.pk).exists()

    def test_it_deletes_the_suppressions_earlier_withdrawals_left(self, campaign, people):
        left = people[0]
        reason = withdrawal.WithdrawalReason.ONE_CLICK
        withdrawal.subscriber_withdraw(subscriber_id=left.pk, reason=reason, source=ConsentEvent.Source.EMAIL)
        erasure.subscriber_erase(subscriber_id=left.pk, reason=reason)
        assert Suppression.objects.filter(campaign=campaign).exists()
        other = CampaignFactory()
        Suppression.objects.create(campaign=other, email_hmac="f" * 64, reason=Suppression.Reason.WITHDRAWN)

        lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        assert not Suppression.objects.filter(campaign=campaign).exists()
        assert Suppression.objects.filter(campaign=other).exists()

    def test_it_does_nothing_on_the_last_day_itself(self, campaign, people):
        result = lifecycle.campaign_end(campaign_id=campaign.pk, today=LAST_DAY)

        assert result.erased == 0
        assert Subscriber.objects.filter(campaign=campaign).count() == 3
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.ACTIVE

    def test_it_never_touches_another_campaign(self, campaign, people):
        other = CampaignFactory(ends_on=None)
        neighbour = person_with_history(
            campaign=other, email=PEOPLE[0][0], first_name="Neighbour", topics=[TopicFactory(campaign=other)]
        )

        lifecycle.campaigns_end_due(today=DAY_AFTER)

        assert held_intact(neighbour)
        other.refresh_from_db()
        assert other.status == Campaign.Status.ACTIVE

    def test_it_keeps_the_aggregate_counts(self, campaign, topics, people):
        stat_increment(campaign_id=campaign.pk, metric="signups", count=3, day=LAST_DAY)
        stat_increment(campaign_id=campaign.pk, topic_id=topics[0].pk, metric="confirmations", count=3, day=LAST_DAY)

        lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        counts = {
            (row.metric, row.topic_id, row.reason): row.count for row in DailyStat.objects.filter(campaign=campaign)
        }
        assert counts[("signups", None, "")] == 3
        assert counts[("confirmations", topics[0].pk, "")] == 3
        assert counts[("erasures", None, "campaign_ended")] == 3

    def test_it_stops_sending_and_sign_ups_before_erasing(self, campaign, topics, people):
        scheduled = Mailing.objects.create(
            campaign=campaign, subject="Later", body="Hi", status=Mailing.Status.SCHEDULED
        )
        sending_now = Mailing.objects.create(campaign=campaign, subject="Now", body="Hi", status=Mailing.Status.SENDING)
        sending_now.topics.set(topics)
        mailing_fan_out(mailing=sending_now)

        result = lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        assert result.mailings_cancelled == 2
        scheduled.refresh_from_db()
        sending_now.refresh_from_db()
        assert (scheduled.status, sending_now.status) == (Mailing.Status.CANCELLED, Mailing.Status.CANCELLED)
        assert sending_now.skipped_count == 3  # the counts stay on the mailing
        form = SignupFormFactory(campaign=Campaign.objects.get(pk=campaign.pk), topics=topics)
        with pytest.raises(CampaignClosed):
            signup_request(
                form=form, email="late@example.com", first_name="", topics=topics, attributes={}, source="page"
            )

    def test_it_erases_in_batches_without_a_query_per_person(self, monkeypatch, campaign, topics, sent_mailing):
        monkeypatch.setattr(erasure, "ERASE_BATCH_SIZE", 50)

        def queries_to_erase(count: int) -> int:
            campaign.status = Campaign.Status.ACTIVE
            campaign.save()
            for i in range(count):
                person_with_history(
                    campaign=campaign, email=f"p{count}-{i}@example.com", first_name="Batch", topics=topics,
                    mailing=sent_mailing,
                )  # fmt: skip
            with CaptureQueriesContext(connection) as queries:
                assert lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER).erased == count
            return len(queries)

        assert queries_to_erase(5) == queries_to_erase(40)

    def test_it_works_through_more_people_than_one_batch(self, monkeypatch, campaign, people):
        monkeypatch.setattr(erasure, "ERASE_BATCH_SIZE", 2)

        assert lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER).erased == 3

        assert not Subscriber.objects.filter(campaign=campaign).exists()
        assert erasures(campaign) == 3

    def test_running_it_again_changes_nothing(self, campaign, people):
        lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        again = lifecycle.campaigns_end_due(today=DAY_AFTER + datetime.timedelta(days=1))

        assert again == []
        assert lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER).erased == 0
        assert erasures(campaign) == 3

    def test_a_campaign_once_ended_is_finished_off_even_if_its_date_moves_later(self, campaign, people):
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ENDED, ends_on=datetime.date(2099, 1, 1))

        (result,) = lifecycle.campaigns_end_due(today=DAY_AFTER)

        assert (result.erased, result.complete) == (3, True)


class TestLegalHoldAtCampaignEnd:
    def test_a_held_person_stops_receiving_but_is_kept_whole(self, campaign, topics, people):
        held = people[1]
        Subscriber.objects.filter(pk=held.pk).update(legal_hold=True, legal_hold_reason="Tribunal claim")

        result = lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)

        assert (result.erased, result.held, result.complete) == (2, 1, True)
        assert held_intact(held)
        held.refresh_from_db()
        assert held.status == Subscriber.Status.UNSUBSCRIBED
        assert held.erasure_due_at is not None
        assert not held.subscriptions.filter(ended_at__isnull=True).exists()
        assert_nothing_left(PEOPLE[0][0], PEOPLE[0][1])

    def test_the_held_person_is_erased_once_the_hold_is_gone(self, campaign, people):
        Subscriber.objects.filter(pk=people[1].pk).update(legal_hold=True, legal_hold_reason="Tribunal claim")
        lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)
        Subscriber.objects.filter(pk=people[1].pk).update(legal_hold=False)

        assert erasure.held_erasures_complete() == 1

        assert_nothing_left(*PEOPLE[1])
        assert erasures(campaign) == 3
        assert not Suppression.objects.filter(campaign=campaign).exists()

    @pytest.mark.parametrize("lift", ["staff", "sweep"])
    def test_a_held_persons_own_erasure_request_leaves_no_hash_once_the_hold_lifts(
        self, campaign, people, lift, django_capture_on_commit_callbacks
    ):
        held = people[1]
        Subscriber.objects.filter(pk=held.pk).update(legal_hold=True, legal_hold_reason="Tribunal claim")
        with django_capture_on_commit_callbacks(execute=True):
            assert preferences.data_erasure_request(subscriber_id=held.pk)
        assert lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER).complete

        if lift == "staff":
            privacy.legal_hold_lift(campaign_id=campaign.pk, subscriber_id=held.pk, actor=StaffUserFactory())
        else:
            Subscriber.objects.filter(pk=held.pk).update(legal_hold=False)
            assert erasure.held_erasures_complete() == 1

        assert_nothing_left(*PEOPLE[1])
        assert not Suppression.objects.filter(campaign=campaign).exists()


class TestConcurrentRuns:
    def test_a_run_that_finds_the_campaign_locked_changes_nothing(self, campaign, people):
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [lifecycle.CAMPAIGN_END_LOCK, campaign.pk])
            result = lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER)
        finally:
            other.close()

        assert result.busy
        assert Subscriber.objects.filter(campaign=campaign).count() == 3
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.ACTIVE

    @pytest.mark.django_db(transaction=True)
    def test_two_runs_at_once_erase_everyone_exactly_once(self, monkeypatch, campaign, people):
        monkeypatch.setattr(erasure, "ERASE_BATCH_SIZE", 1)
        start = threading.Barrier(2)
        results = []

        def run() -> None:
            start.wait()
            try:
                results.append(lifecycle.campaign_end(campaign_id=campaign.pk, today=DAY_AFTER))
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sum(result.erased for result in results) == 3
        assert erasures(campaign) == 3
        assert not Subscriber.objects.filter(campaign=campaign).exists()


class TestPreviewAndSafety:
    def test_staff_see_how_many_people_will_be_erased_and_when(self, campaign, people):
        Subscriber.objects.filter(pk=people[0].pk).update(legal_hold=True)

        preview = lifecycle.campaign_end_preview(campaign=campaign)

        assert (preview.erase_on, preview.to_erase, preview.held, preview.erased) == (DAY_AFTER, 2, 1, False)

    def test_an_end_date_already_passed_asks_for_confirmation(self, campaign, people):
        problems = lifecycle.campaign_end_date_problems(
            campaign=campaign, ends_on=datetime.date(2025, 6, 30), erase_confirmed=False, today=LAST_DAY
        )

        assert len(problems) == 1
        assert "30 June 2025 has already passed" in problems[0]
        assert "all 3 of its subscribers" in problems[0]

    @pytest.mark.parametrize(
        ("ends_on", "confirmed"),
        [
            (datetime.date(2025, 6, 30), True),  # confirmed
            (LAST_DAY, False),  # today: still the last day
            (datetime.date(2027, 1, 1), False),  # future
            (None, False),  # no end
        ],
    )
    def test_other_end_dates_need_no_confirmation(self, campaign, ends_on, confirmed):
        assert (
            lifecycle.campaign_end_date_problems(
                campaign=campaign, ends_on=ends_on, erase_confirmed=confirmed, today=LAST_DAY
            )
            == []
        )

    def test_an_unchanged_end_date_in_the_past_is_no_new_decision(self, campaign):
        assert (
            lifecycle.campaign_end_date_problems(
                campaign=campaign, ends_on=LAST_DAY, erase_confirmed=False, today=DAY_AFTER
            )
            == []
        )

    def test_a_confirmed_past_end_date_is_audited_and_erases_at_once(
        self, campaign, people, django_capture_on_commit_callbacks
    ):
        staff = StaffUserFactory()
        Campaign.objects.filter(pk=campaign.pk).update(ends_on=datetime.date(2025, 1, 1))
        campaign.refresh_from_db()

        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.campaign_end_confirmed(campaign=campaign, actor=staff)

        event = AuditEvent.objects.get(action="campaign_end_confirmed")
        assert (event.actor, event.target_id) == (staff, campaign.pk)
        assert not Subscriber.objects.filter(campaign=campaign).exists()


class TestEndNotice:
    def test_it_drafts_a_service_notice_saying_when_data_goes(self, campaign, people, time_machine):
        time_machine.move_to(datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC), tick=False)

        mailing = lifecycle.campaign_end_notice_draft(campaign=campaign, actor=StaffUserFactory())

        assert (mailing.kind, mailing.status) == (Mailing.Kind.SERVICE_NOTICE, Mailing.Status.DRAFT)
        assert "30 June 2026" in mailing.subject
        assert "On 1 July 2026 we will delete" in mailing.body
        assert mailing_fan_out(mailing=mailing) == 3

    def test_it_refuses_a_campaign_without_an_end_date(self):
        with pytest.raises(ValidationError, match="end date"):
            lifecycle.campaign_end_notice_draft(campaign=CampaignFactory(ends_on=None))
