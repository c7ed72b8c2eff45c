import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from subscriptions.models import DailyStat, Mailing, Subscriber, Topic
from subscriptions.services import dashboard
from subscriptions.services.dashboard import ComplaintLevel, Rate
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 12, 8)


def days_ago(n: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=n)


def stat(campaign, metric, count, *, day=TODAY, reason="", topic=None):
    return DailyStat.objects.create(campaign=campaign, topic=topic, day=day, metric=metric, reason=reason, count=count)


def test_it_counts_each_day_exactly_and_a_day_without_rows_is_zero():
    campaign = CampaignFactory()
    stat(campaign, "signups", 5, day=days_ago(2))
    stat(campaign, "signups", 7, day=TODAY)
    stat(campaign, "confirmations", 4, day=days_ago(2))
    stat(campaign, "erasures", 2, day=days_ago(1), reason="one_click")
    stat(campaign, "erasures", 1, day=days_ago(1), reason="complaint")
    series = dashboard.daily_series(campaign_id=campaign.pk, days=30, today=TODAY)
    assert series.since == days_ago(29)
    assert series.until == TODAY
    assert len(series.days) == 30
    assert series.days[0] == days_ago(29)
    assert series.days[-1] == TODAY
    assert series.signups == [0] * 27 + [5, 0, 7]
    assert series.confirmations == [0] * 27 + [4, 0, 0]
    assert series.erasures == [0] * 28 + [3, 0]
    assert series.withdrawals == {}
    assert series.withdrawals_total == [0] * 30


@pytest.mark.parametrize("days", [30, 90, 365])
def test_a_period_starts_days_minus_one_ago_and_ends_today(days):
    campaign = CampaignFactory()
    stat(campaign, "signups", 1, day=days_ago(days))  # the day before the period
    stat(campaign, "signups", 10, day=days_ago(days - 1))  # its first day
    stat(campaign, "signups", 100, day=TODAY)  # its last day
    stat(campaign, "signups", 1000, day=TODAY + datetime.timedelta(days=1))  # tomorrow
    series = dashboard.daily_series(campaign_id=campaign.pk, days=days, today=TODAY)
    assert len(series.signups) == days
    assert series.signups[0] == 10
    assert series.signups[-1] == 100
    assert sum(series.signups) == 110


def test_it_splits_withdrawals_by_reason_in_the_order_reasons_are_defined():
    campaign = CampaignFactory()
    stat(campaign, "withdrawals", 3, day=TODAY, reason="complaint")
    stat(campaign, "withdrawals", 2, day=TODAY, reason="one_click")
    stat(campaign, "withdrawals", 1, day=days_ago(1), reason="one_click")
    stat(campaign, "withdrawals", 4, day=days_ago(1), reason="something_new")
    series = dashboard.daily_series(campaign_id=campaign.pk, days=30, today=TODAY)
    assert list(series.withdrawals) == ["one_click", "complaint", "something_new"]
    assert series.withdrawals["one_click"][-2:] == [1, 2]
    assert series.withdrawals["complaint"][-2:] == [0, 3]
    assert series.withdrawals["something_new"][-2:] == [4, 0]
    assert series.withdrawals_total[-2:] == [5, 5]
    headings = [heading for heading, _values in series.columns()]
    assert headings == [
        "Sign-ups",
        "Confirmations",
        "Withdrawals: One-click unsubscribe",
        "Withdrawals: Spam complaint",
        "Withdrawals: something_new",
        "Withdrawals (all reasons)",
        "Erasures",
    ]


def test_it_counts_only_this_campaigns_campaign_wide_rows():
    campaign, other = CampaignFactory(), CampaignFactory()
    topic = TopicFactory(campaign=campaign)
    stat(campaign, "signups", 2)
    stat(other, "signups", 50)
    stat(campaign, "confirmations", 2)
    stat(campaign, "confirmations", 2, topic=topic)  # the same people, counted per topic
    stat(campaign, "withdrawals", 9, topic=topic, reason="preferences")  # left one topic only
    stat(campaign, "sends", 500)  # not charted
    series = dashboard.daily_series(campaign_id=campaign.pk, days=30, today=TODAY)
    assert sum(series.signups) == 2
    assert sum(series.confirmations) == 2
    assert series.withdrawals == {}


def test_the_confirmation_rate_is_confirmations_over_sign_ups():
    campaign = CampaignFactory()
    stat(campaign, "signups", 8, day=days_ago(3))
    stat(campaign, "confirmations", 6, day=days_ago(2))
    rate = dashboard.daily_series(campaign_id=campaign.pk, days=30, today=TODAY).confirmation_rate
    assert (rate.part, rate.whole) == (6, 8)
    assert rate.percent == 75
    assert Rate(part=3, whole=0).percent is None


def test_it_counts_active_unrestricted_people_with_an_open_subscription_per_topic():
    campaign, other = CampaignFactory(), CampaignFactory()
    general = TopicFactory(campaign=campaign, name="General updates")
    kent = TopicFactory(campaign=campaign, name="Kent Police", kind=Topic.Kind.ENTITY)
    TopicFactory(campaign=campaign, name="Avon and Somerset Police", kind=Topic.Kind.ENTITY)
    for _ in range(3):
        SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign), topic=general)
    both = SubscriberFactory(campaign=campaign)
    SubscriptionFactory(subscriber=both, topic=general)
    SubscriptionFactory(subscriber=both, topic=kent)
    SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign, status=Subscriber.Status.PENDING), topic=kent)
    SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign, restricted=True), topic=kent)
    SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign), topic=kent, ended_at=timezone.now())
    SubscriptionFactory(subscriber=SubscriberFactory(campaign=other), topic=TopicFactory(campaign=other))
    counts = dashboard.topic_counts(campaign_id=campaign.pk)
    assert [(t.name, t.kind, t.active) for t in counts] == [
        ("Avon and Somerset Police", "Named entity", 0),
        ("General updates", "General updates", 4),
        ("Kent Police", "Named entity", 1),
    ]
    assert dashboard.active_people(campaign_id=campaign.pk) == 5  # the ended subscription's person is still active


def test_topics_sort_by_name_or_count_either_way_and_filter_by_name():
    campaign = CampaignFactory()
    names = {"kent police": 2, "Essex Police": 5, "Avon and Somerset Police": 2, "General updates": 0}
    for name, active in names.items():
        topic = TopicFactory(campaign=campaign, name=name)
        for _ in range(active):
            SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign), topic=topic)

    def order(**kwargs):
        return [t.name for t in dashboard.topic_counts(campaign_id=campaign.pk, **kwargs)]

    assert order() == ["Avon and Somerset Police", "Essex Police", "General updates", "kent police"]
    assert order(descending=True) == ["kent police", "General updates", "Essex Police", "Avon and Somerset Police"]
    assert order(sort="count", descending=True) == [
        "Essex Police",
        "Avon and Somerset Police",
        "kent police",
        "General updates",
    ]
    assert order(sort="count")[0] == "General updates"
    assert order(name_contains="POLICE") == ["Avon and Somerset Police", "Essex Police", "kent police"]
    assert order(name_contains="nothing like it") == []


def sent_mailing(campaign, subject, *, finished_days_ago, sent, bounced=0, complained=0, status="sent"):
    finished = timezone.make_aware(datetime.datetime.combine(days_ago(finished_days_ago), datetime.time(12)))
    return Mailing.objects.create(
        campaign=campaign, subject=subject, body="Hello", status=status, finished_at=finished,
        sent_count=sent, bounced_count=bounced, complained_count=complained,
    )  # fmt: skip


def test_it_lists_the_mailings_sent_in_the_period_newest_first_with_their_rates():
    campaign, other = CampaignFactory(), CampaignFactory()
    sent_mailing(campaign, "Older", finished_days_ago=20, sent=2000, bounced=40, complained=2)
    sent_mailing(campaign, "Newer", finished_days_ago=1, sent=1000, bounced=5, complained=3)
    sent_mailing(campaign, "Before the period", finished_days_ago=30, sent=10)
    sent_mailing(campaign, "Cancelled", finished_days_ago=2, sent=0, status=Mailing.Status.CANCELLED)
    sent_mailing(other, "Another campaign's", finished_days_ago=1, sent=10)
    mailings = dashboard.mailings_sent(campaign_id=campaign.pk, since=dashboard.period_start(days=30, today=TODAY))
    assert [m.subject for m in mailings] == ["Newer", "Older"]
    newer, older = mailings
    assert newer.delivered == 1000
    assert newer.bounces.percent == Decimal("0.5")
    assert newer.complaints.percent == Decimal("0.3")
    assert newer.complaint_level == ComplaintLevel.OVER
    assert older.bounces.percent == 2
    assert older.complaint_level == ComplaintLevel.WARNING


@pytest.mark.parametrize(
    ("complaints", "delivered", "level"),
    [
        (0, 0, ComplaintLevel.WITHIN),
        (0, 1000, ComplaintLevel.WITHIN),
        (999, 1_000_000, ComplaintLevel.WITHIN),
        (1, 1000, ComplaintLevel.WARNING),
        (2999, 1_000_000, ComplaintLevel.WARNING),
        (3, 1000, ComplaintLevel.OVER),
        (50, 1000, ComplaintLevel.OVER),
    ],
)
def test_a_complaint_rate_is_within_from_one_per_thousand_a_warning_and_from_three_over(complaints, delivered, level):
    assert dashboard.complaint_level(Rate(part=complaints, whole=delivered)) == level


def test_a_year_of_every_topic_is_one_query_per_figure(django_assert_num_queries):
    campaign = CampaignFactory()
    topics = [TopicFactory(campaign=campaign, kind=Topic.Kind.ENTITY) for _ in range(43)]
    rows = [
        DailyStat(campaign=campaign, topic=topic, day=days_ago(n), metric=metric, reason=reason, count=n + 1)
        for n in range(365)
        for topic in [None, *topics[:3]]
        for metric, reason in [("signups", ""), ("confirmations", ""), ("withdrawals", "one_click")]
    ]
    DailyStat.objects.bulk_create(rows)
    for topic in topics:
        SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign), topic=topic)
    with django_assert_num_queries(1):
        series = dashboard.daily_series(campaign_id=campaign.pk, days=365, today=TODAY)
    with django_assert_num_queries(1):
        counts = dashboard.topic_counts(campaign_id=campaign.pk, sort="count")
    with django_assert_num_queries(1):
        dashboard.mailings_sent(campaign_id=campaign.pk, since=series.since)
    assert sum(series.signups) == sum(range(1, 366))
    assert [topic.active for topic in counts] == [1] * 43
