"""The fan-out: one delivery per person who should get a mailing, in ranges at once for a
large campaign, and an attempt that failed part-way completed without duplicates."""

import itertools
import threading

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from subscriptions.addresses import email_hmac
from subscriptions.models import Delivery, Mailing, Subscriber, Suppression
from subscriptions.services.sending import fan_out
from subscriptions.services.sending.fan_out import mailing_fan_out
from subscriptions.services.sending.start import mailing_start
from tests.support.factories import CampaignFactory, SubscriberFactory
from tests.support.mailing_fixtures import make_mailing, subscribe

pytestmark = pytest.mark.django_db


def recipients(mailing):
    return set(Delivery.objects.filter(mailing=mailing).values_list("subscriber_id", flat=True))


def test_fan_out_makes_one_delivery_per_person_however_many_topics_match(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:2])
    assert mailing_fan_out(mailing=mailing) == 5
    assert recipients(mailing) == {person.pk for person in audience}


def test_fan_out_leaves_out_everyone_who_must_not_be_mailed(campaign, topics, audience):
    pending = SubscriberFactory(campaign=campaign, status=Subscriber.Status.PENDING)
    gone = SubscriberFactory(campaign=campaign, status=Subscriber.Status.UNSUBSCRIBED)
    restricted = SubscriberFactory(campaign=campaign, restricted=True)
    suppressed = SubscriberFactory(campaign=campaign)
    Suppression.objects.create(campaign=campaign, email_hmac=email_hmac(suppressed.email), reason="complaint")
    ended = SubscriberFactory(campaign=campaign)
    subscribe(ended, topics[0], ended=True)
    other_topic = SubscriberFactory(campaign=campaign)
    subscribe(other_topic, topics[2])
    for person in (pending, gone, restricted, suppressed):
        subscribe(person, topics[0])
    mailing = make_mailing(campaign, topics[:2])
    mailing_fan_out(mailing=mailing)
    assert recipients(mailing) == {person.pk for person in audience}


def test_a_suppression_in_another_campaign_does_not_count(campaign, topics, audience):
    other = CampaignFactory()
    Suppression.objects.create(campaign=other, email_hmac=email_hmac(audience[0].email), reason="complaint")
    mailing = make_mailing(campaign, topics[:1])
    assert mailing_fan_out(mailing=mailing) == 5


def test_a_service_notice_goes_to_every_active_subscriber_whatever_their_topics(campaign, topics, audience):
    no_topics = SubscriberFactory(campaign=campaign)
    SubscriberFactory(campaign=campaign, restricted=True)
    SubscriberFactory(campaign=CampaignFactory())
    mailing = make_mailing(campaign, [], kind=Mailing.Kind.SERVICE_NOTICE)
    mailing_fan_out(mailing=mailing)
    assert recipients(mailing) == {person.pk for person in audience} | {no_topics.pk}


def test_fanning_out_again_adds_nobody(campaign, topics, audience):
    mailing = make_mailing(campaign, topics[:1])
    mailing_fan_out(mailing=mailing)
    assert mailing_fan_out(mailing=mailing) == 5
    assert Delivery.objects.filter(mailing=mailing).count() == 5


@pytest.fixture
def mixed_audience(campaign, topics):
    """30 followers of topics[0] among people who must not get it, ids interleaved."""
    wanted = set()
    for i in range(60):
        person = SubscriberFactory(campaign=campaign, restricted=i % 6 == 5)
        if i % 2 == 0:
            subscribe(person, topics[0])
            if i % 6 != 5:
                wanted.add(person.pk)
        else:
            subscribe(person, topics[2])
    return wanted


@pytest.mark.django_db(transaction=True)
def test_a_large_fan_out_runs_in_ranges_at_once_and_picks_the_same_people(
    campaign, topics, mixed_audience, settings, django_assert_num_queries
):
    settings.FANOUT_PARALLEL_FROM = 10
    settings.FANOUT_PARALLELISM = 1
    whole = make_mailing(campaign, topics[:1])
    assert mailing_fan_out(mailing=whole) == len(mixed_audience)
    settings.FANOUT_PARALLELISM = 4
    assert len(fan_out._fan_out_ranges(campaign.pk)) == 4
    sliced = make_mailing(campaign, topics[:1])
    # On this connection only the audience's topics, the id range and the count of
    # earlier rows: each range's INSERT runs on a connection of its own.
    with django_assert_num_queries(3):
        assert mailing_fan_out(mailing=sliced) == len(mixed_audience)
    assert recipients(sliced) == recipients(whole) == mixed_audience
    ids = list(Subscriber.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True))
    ranges = fan_out._fan_out_ranges(campaign.pk)
    assert ranges[0][0] == ids[0]
    assert ranges[-1][1] == ids[-1]
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges)), "no gap, no overlap"


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_range_that_fails_is_completed_by_the_next_attempt_without_duplicates(
    campaign, topics, mixed_audience, settings, monkeypatch
):
    mailing, ranges = _due_in_ranges(campaign, topics, settings, parallelism=3)
    # The last range's statement fails (a bound that is not a number); the others commit.
    monkeypatch.setattr(fan_out, "_fan_out_ranges", lambda campaign_id: [*ranges[:2], ("x", "x")])
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
        mailing_start(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED, "the mailing's own change rolled back"
    partial = recipients(mailing)
    assert partial
    assert partial < mixed_audience
    monkeypatch.setattr(fan_out, "_fan_out_ranges", lambda campaign_id: ranges)
    _assert_started_and_sent_once(mailing, mixed_audience)


@pytest.mark.django_db(transaction=True)
def test_an_attempt_completing_an_earlier_one_counts_rows_that_commit_while_it_runs(
    campaign, topics, mixed_audience, settings, monkeypatch
):
    # ON CONFLICT skips such rows without counting them: the count is taken afresh.
    mailing, ranges = _due_in_ranges(campaign, topics, settings, parallelism=2)
    first, second = sorted(mixed_audience)[:2]
    Delivery.objects.create(mailing=mailing, subscriber_id=first)  # an earlier attempt's row

    def ranges_after_the_count(campaign_id):
        _commit_delivery_elsewhere(mailing, second)
        return ranges

    monkeypatch.setattr(fan_out, "_fan_out_ranges", ranges_after_the_count)
    _assert_started_and_sent_once(mailing, mixed_audience)


def _commit_delivery_elsewhere(mailing, subscriber_id):
    """A delivery committed on another connection, as a lost caller's range would."""

    def commit() -> None:
        try:
            Delivery.objects.create(mailing_id=mailing.pk, subscriber_id=subscriber_id)
        finally:
            connection.close()

    committer = threading.Thread(target=commit)
    committer.start()
    committer.join()


def _due_in_ranges(campaign, topics, settings, *, parallelism):
    """A due mailing to topics[0], and the id ranges its fan-out runs in."""
    settings.FANOUT_PARALLEL_FROM = 10
    settings.FANOUT_PARALLELISM = parallelism
    mailing = make_mailing(campaign, topics[:1], status=Mailing.Status.SCHEDULED)
    Mailing.objects.filter(pk=mailing.pk).update(scheduled_at=timezone.now())
    return mailing, fan_out._fan_out_ranges(campaign.pk)


def _assert_started_and_sent_once(mailing, audience):
    assert mailing_start(mailing_id=mailing.pk)  # its send tasks run at commit (eager)
    mailing.refresh_from_db()
    assert (mailing.recipients_count, mailing.sent_count) == (len(audience), len(audience))
    assert mailing.status == Mailing.Status.SENT
    assert Delivery.objects.filter(mailing=mailing).count() == len(audience)
    assert recipients(mailing) == audience


@pytest.mark.django_db(transaction=True)
def test_rows_that_appear_after_the_count_fail_the_attempt_rather_than_mail_anyone_twice(
    campaign, topics, mixed_audience, settings, monkeypatch
):
    # A first attempt inserts without ON CONFLICT; the primary key (the pair) is what stops
    # a row committed meanwhile (say by a lost caller's range) from being doubled.
    mailing, ranges = _due_in_ranges(campaign, topics, settings, parallelism=2)
    early = min(mixed_audience)

    def ranges_after_the_count(campaign_id):
        _commit_delivery_elsewhere(mailing, early)
        return ranges

    monkeypatch.setattr(fan_out, "_fan_out_ranges", ranges_after_the_count)
    with pytest.raises(IntegrityError):
        mailing_start(mailing_id=mailing.pk)
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.SCHEDULED
    assert Delivery.objects.filter(mailing=mailing, subscriber_id=early).count() == 1
    monkeypatch.setattr(fan_out, "_fan_out_ranges", lambda campaign_id: ranges)
    _assert_started_and_sent_once(mailing, mixed_audience)
