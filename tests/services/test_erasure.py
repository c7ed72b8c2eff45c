"""Erasure: what goes, what stays, the legal hold, and every path that erases reaching it."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subscriptions import tasks
from subscriptions.models import ConsentEvent, DailyStat, Delivery, Mailing, Subscriber, Subscription, Suppression
from subscriptions.services import erasure, lifecycle, preferences, privacy, reconfirmation, retention
from subscriptions.services.signup.confirm import signup_confirm
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from tests.support.factories import (
    CampaignFactory,
    StaffUserFactory,
    SubscriberFactory,
    SubscriptionFactory,
    TopicFactory,
)
from tests.support.lifecycle import held_intact, person_with_history
from tests.support.nothing_left import assert_nothing_left

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 9, 1, 3, 15, tzinfo=datetime.UTC)
EMAIL, NAME = "philippa.wren@example.com", "Philippa"


@pytest.fixture
def campaign():
    return CampaignFactory()


@pytest.fixture
def mailing(campaign):
    return Mailing.objects.create(campaign=campaign, subject="News", body="Hello", status=Mailing.Status.SENT)


def someone(campaign, mailing, email=EMAIL, first_name=NAME, **fields) -> Subscriber:
    """A person with everything a campaign holds: subscriptions, consent events, a delivery."""
    return person_with_history(
        campaign=campaign, email=email, first_name=first_name, topics=[TopicFactory.create(campaign=campaign)],
        mailing=mailing, **fields,
    )  # fmt: skip


def rows_of(subscriber_id: int) -> list[int]:
    """How many rows each table holds about a person: subscriber, subscriptions, events, deliveries."""
    return [
        Subscriber.objects.filter(pk=subscriber_id).count(),
        Subscription.objects.filter(subscriber_id=subscriber_id).count(),
        ConsentEvent.objects.filter(subscriber_id=subscriber_id).count(),
        Delivery.objects.filter(subscriber_id=subscriber_id).count(),
    ]


class TestWhatGoes:
    def test_it_deletes_every_row_of_the_people_named_and_no_one_elses(self, campaign, mailing):
        gone, kept = someone(campaign, mailing), someone(campaign, mailing, email="kept@example.com", first_name="K")

        with CaptureQueriesContext(connection) as queries:
            assert erasure.personal_data_delete(campaign_id=campaign.pk, subscriber_ids=[gone.pk]) == 1

        deletes = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("DELETE")]
        assert len(deletes) == 4  # deliveries, consent events, subscriptions, subscribers
        assert rows_of(gone.pk) == [0, 0, 0, 0]
        assert rows_of(kept.pk) == [1, 1, 2, 1]
        assert_nothing_left(EMAIL, NAME)
        assert not Suppression.objects.exists()
        assert not DailyStat.objects.exists()

    def test_the_sqlite_demos_statements_delete_the_same_rows(self, monkeypatch, campaign, mailing):
        gone, kept = someone(campaign, mailing), someone(campaign, mailing, email="kept@example.com", first_name="K")
        monkeypatch.setattr(connection, "vendor", "sqlite")  # its branch is portable SQL

        assert erasure.personal_data_delete(campaign_id=campaign.pk, subscriber_ids=[gone.pk]) == 1

        assert rows_of(gone.pk) == [0, 0, 0, 0]
        assert rows_of(kept.pk) == [1, 1, 2, 1]

    def test_nobody_named_deletes_nothing(self, campaign, mailing):
        person = someone(campaign, mailing)

        assert erasure.personal_data_delete(campaign_id=campaign.pk, subscriber_ids=[]) == 0

        assert rows_of(person.pk) == [1, 1, 2, 1]


class TestOnePerson:
    def test_it_leaves_a_suppression_entry_and_a_count(self, campaign, mailing):
        person = someone(campaign, mailing, status=Subscriber.Status.UNSUBSCRIBED)

        assert erasure.subscriber_erase(subscriber_id=person.pk, reason=WithdrawalReason.COMPLAINT)

        assert_nothing_left(EMAIL, NAME)
        assert Suppression.objects.get(campaign=campaign).email_hmac == person.email_hmac
        assert Suppression.objects.get(campaign=campaign).reason == Suppression.Reason.COMPLAINT
        stat = DailyStat.objects.get(campaign=campaign, metric=DailyStat.Metric.ERASURES)
        assert (stat.reason, stat.count) == ("complaint", 1)

    def test_an_earlier_entry_takes_the_reason_of_this_erasure(self, campaign, mailing):
        person = someone(campaign, mailing, status=Subscriber.Status.UNSUBSCRIBED)
        Suppression.objects.create(campaign=campaign, email_hmac=person.email_hmac, reason=Suppression.Reason.WITHDRAWN)

        erasure.subscriber_erase(subscriber_id=person.pk, reason=WithdrawalReason.HARD_BOUNCE)

        assert Suppression.objects.get(campaign=campaign).reason == Suppression.Reason.HARD_BOUNCE

    def test_someone_already_gone_is_a_no_op(self):
        assert not erasure.subscriber_erase(subscriber_id=987654, reason=WithdrawalReason.STAFF)
        assert not DailyStat.objects.exists()

    def test_someone_on_legal_hold_is_kept_whole_and_marked_due(self, campaign, mailing):
        person = someone(campaign, mailing, status=Subscriber.Status.UNSUBSCRIBED, legal_hold=True)

        assert not erasure.subscriber_erase(subscriber_id=person.pk, reason=WithdrawalReason.STAFF)

        assert held_intact(person)
        person.refresh_from_db()
        assert person.erasure_due_at is not None
        assert not Suppression.objects.exists()


def withdraw_leaving_the_erasure_queued(subscriber, django_capture_on_commit_callbacks):
    """Withdraw as a request would; the erase task it queues has not run yet."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        subscriber_withdraw(
            subscriber_id=subscriber.pk, reason=WithdrawalReason.ONE_CLICK, source=ConsentEvent.Source.EMAIL
        )
    assert len(queued) == 1


def sign_up_again_and_confirm(subscriber):
    request = ConsentEvent.objects.create(
        subscriber=subscriber, kind=ConsentEvent.Kind.REQUESTED, source=ConsentEvent.Source.PAGE,
        topic_ids=[], details={"first_name": subscriber.first_name},
    )  # fmt: skip
    assert signup_confirm(subscriber_id=subscriber.pk, event_id=request.pk) is not None


class TestDelayedErasure:
    """Erasure that follows a withdrawal re-checks the person when it runs, not when it was queued."""

    @pytest.fixture
    def person(self):
        subscriber = SubscriberFactory(email="ottoline.brisk@example.com", first_name="Ottoline")
        SubscriptionFactory(subscriber=subscriber)
        return subscriber

    def test_it_does_not_erase_someone_who_confirmed_again_before_it_ran(
        self, person, django_capture_on_commit_callbacks
    ):
        withdraw_leaving_the_erasure_queued(person, django_capture_on_commit_callbacks)
        sign_up_again_and_confirm(person)

        tasks.erase_subscriber(person.pk, str(WithdrawalReason.ONE_CLICK))

        person.refresh_from_db()
        assert person.status == Subscriber.Status.ACTIVE
        assert person.consent_events.filter(kind=ConsentEvent.Kind.CONFIRMED).exists()

    def test_it_does_not_erase_someone_who_signed_up_again_and_has_not_confirmed_yet(
        self, person, django_capture_on_commit_callbacks
    ):
        withdraw_leaving_the_erasure_queued(person, django_capture_on_commit_callbacks)
        Subscriber.objects.filter(pk=person.pk).update(status=Subscriber.Status.PENDING)

        tasks.erase_subscriber(person.pk, str(WithdrawalReason.ONE_CLICK))

        assert Subscriber.objects.filter(pk=person.pk).exists()

    def test_it_still_erases_someone_who_stayed_withdrawn(self, person, django_capture_on_commit_callbacks):
        withdraw_leaving_the_erasure_queued(person, django_capture_on_commit_callbacks)

        tasks.erase_subscriber(person.pk, str(WithdrawalReason.ONE_CLICK))

        assert not Subscriber.objects.filter(pk=person.pk).exists()


class TestHeldErasures:
    def test_it_erases_people_whose_hold_was_lifted_for_the_reason_they_were_due(self):
        campaign = CampaignFactory()
        person = person_with_history(
            campaign=campaign, email="was.held@example.com", first_name="Waheeda", topics=[], legal_hold=True
        )
        erasure.subscribers_erase(
            candidates=Subscriber.objects.all(), campaign_id=campaign.pk, reason=WithdrawalReason.LAPSED
        )
        Subscriber.objects.filter(pk=person.pk).update(legal_hold=False)

        assert retention.retention_sweep(now=NOW)["held_erasures_completed"] == 1

        assert_nothing_left("was.held@example.com", "Waheeda")
        assert Suppression.objects.get(campaign=campaign).reason == Suppression.Reason.LAPSED

    def test_it_leaves_people_still_on_hold(self):
        campaign = CampaignFactory()
        person = person_with_history(
            campaign=campaign, email="held@example.com", first_name="H", topics=[], legal_hold=True
        )
        Subscriber.objects.filter(pk=person.pk).update(erasure_due_at=NOW)

        assert erasure.held_erasures_complete() == 0
        assert Subscriber.objects.filter(pk=person.pk, email="held@example.com").exists()


class TestSetBasedErasure:
    def test_it_hashes_an_address_that_was_stored_without_its_hash(self):
        campaign = CampaignFactory()
        person = person_with_history(campaign=campaign, email="unhashed@example.com", first_name="U", topics=[])
        Subscriber.objects.filter(pk=person.pk).update(email_hmac="")

        erasure.subscribers_erase(
            candidates=Subscriber.objects.all(), campaign_id=campaign.pk, reason=WithdrawalReason.LAPSED
        )

        assert Suppression.objects.get(campaign=campaign).email_hmac == person.email_hmac

    def test_an_unconfirmed_sign_up_leaves_no_suppression(self):
        campaign = CampaignFactory()
        person_with_history(
            campaign=campaign, email="p@example.com", first_name="P", topics=[], status=Subscriber.Status.PENDING
        )

        outcome = erasure.subscribers_erase(
            candidates=Subscriber.objects.all(), campaign_id=campaign.pk, reason=WithdrawalReason.LAPSED
        )

        assert outcome.erased == 1
        assert not Suppression.objects.exists()

    def test_an_earlier_entry_is_left_as_it_was(self, campaign, mailing):
        person = someone(campaign, mailing)
        Suppression.objects.create(campaign=campaign, email_hmac=person.email_hmac, reason=Suppression.Reason.WITHDRAWN)

        erasure.subscribers_erase(
            candidates=Subscriber.objects.all(), campaign_id=campaign.pk, reason=WithdrawalReason.LAPSED
        )

        assert Suppression.objects.get(campaign=campaign).reason == Suppression.Reason.WITHDRAWN

    def test_without_suppress_it_leaves_no_entry_but_still_counts(self, campaign, mailing):
        someone(campaign, mailing)

        outcome = erasure.subscribers_erase(
            candidates=Subscriber.objects.all(), campaign_id=campaign.pk, reason=WithdrawalReason.CAMPAIGN_ENDED,
            now=NOW, suppress=False,
        )  # fmt: skip

        assert (outcome.erased, outcome.held) == (1, 0)
        assert_nothing_left(EMAIL, NAME)
        assert not Suppression.objects.exists()
        stat = DailyStat.objects.get(campaign=campaign, metric=DailyStat.Metric.ERASURES)
        assert (stat.reason, stat.count, stat.day) == ("campaign_ended", 1, timezone.localdate(NOW))


# Every path that erases people, end to end: each returns what must be found nowhere
# afterwards, and the suppression entry it leaves (None: none).
def by_withdrawal(campaign, mailing, run):
    person = someone(campaign, mailing)
    run(subscriber_withdraw, subscriber_id=person.pk, reason=WithdrawalReason.ONE_CLICK, source="email")
    return (EMAIL, NAME), Suppression.Reason.WITHDRAWN


def by_pending_expiry(campaign, mailing, run):
    someone(campaign, mailing, status=Subscriber.Status.PENDING)
    assert retention.pending_signups_expire(now=timezone.now() + datetime.timedelta(days=8)) == 1
    return (EMAIL, NAME), None


def by_lapse(campaign, mailing, run):
    campaign.reconfirm_after_days = 365
    campaign.save()
    person = someone(campaign, mailing)
    Subscriber.objects.filter(pk=person.pk).update(reconfirm_requested_at=timezone.now() - datetime.timedelta(31))
    assert reconfirmation.subscribers_lapse(campaign=campaign) == 1
    return (EMAIL, NAME), Suppression.Reason.LAPSED


def by_an_email_change_freeing_the_address(campaign, mailing, run):
    someone(campaign, mailing, first_name="Obadiah", status=Subscriber.Status.PENDING)
    mover = SubscriberFactory(campaign=campaign, email="mover@example.com", first_name="Mo")
    request = ConsentEvent.objects.create(
        subscriber=mover, kind=ConsentEvent.Kind.CHANGED, source=ConsentEvent.Source.PREFERENCES,
        details={"change": preferences.EMAIL_CHANGE_REQUESTED, "new_email": EMAIL},
    )  # fmt: skip
    outcome = run(preferences.email_change_confirm, subscriber_id=mover.pk, event_id=request.pk)
    assert outcome == preferences.EmailChangeOutcome.CHANGED
    return ("Obadiah",), None


def by_campaign_end(campaign, mailing, run):
    campaign.ends_on = datetime.date(2026, 6, 30)
    campaign.save()
    someone(campaign, mailing)
    assert lifecycle.campaign_end(campaign_id=campaign.pk, today=datetime.date(2026, 7, 1)).complete
    return (EMAIL, NAME), None


def by_lifting_a_legal_hold(campaign, mailing, run):
    person = someone(campaign, mailing, legal_hold=True, legal_hold_reason="Claim 2026/7")
    assert run(preferences.data_erasure_request, subscriber_id=person.pk)
    assert held_intact(person)
    privacy.legal_hold_lift(campaign_id=campaign.pk, subscriber_id=person.pk, actor=StaffUserFactory())
    return (EMAIL, NAME, "Claim 2026/7"), Suppression.Reason.ERASED


def by_the_missed_withdrawal_sweep(campaign, mailing, run):
    person = someone(campaign, mailing)
    subscriber_withdraw(subscriber_id=person.pk, reason=WithdrawalReason.ONE_CLICK, source="email", erase=False)
    Subscriber.objects.filter(pk=person.pk).update(withdrawn_at=timezone.now() - datetime.timedelta(hours=2))
    assert retention.withdrawn_erase() == 1
    return (EMAIL, NAME), Suppression.Reason.WITHDRAWN


def by_the_retention_limit(campaign, mailing, run):
    campaign.max_retention_days = 30
    campaign.save()
    someone(campaign, mailing, confirmed_at=timezone.now() - datetime.timedelta(days=31))
    assert retention.retention_limit_erase() == 1
    return (EMAIL, NAME), Suppression.Reason.LAPSED


def by_staff(campaign, mailing, run):
    person = someone(campaign, mailing)
    privacy.subscriber_erase_for_staff(campaign_id=campaign.pk, subscriber_id=person.pk, actor=StaffUserFactory())
    return (EMAIL, NAME), Suppression.Reason.ERASED


@pytest.mark.parametrize(
    "path",
    [
        by_withdrawal, by_pending_expiry, by_lapse, by_an_email_change_freeing_the_address, by_campaign_end,
        by_lifting_a_legal_hold, by_the_missed_withdrawal_sweep, by_the_retention_limit, by_staff,
    ],
    ids=lambda path: path.__name__,
)  # fmt: skip
def test_every_path_that_erases_leaves_nothing_but_its_suppression_entry(path, campaign, mailing, run):
    needles, suppression = path(campaign, mailing, run)

    assert_nothing_left(*needles)
    assert not Delivery.objects.filter(mailing=mailing).exists()
    entries = list(Suppression.objects.filter(campaign=campaign).values_list("reason", flat=True))
    assert entries == ([] if suppression is None else [suppression])
