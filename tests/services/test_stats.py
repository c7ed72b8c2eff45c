import datetime

import pytest

from subscriptions.models import DailyStat
from subscriptions.services.stats import stat_increment
from tests.support.factories import CampaignFactory, TopicFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 23)


def test_it_adds_to_one_counter_per_campaign_day_and_metric():
    campaign = CampaignFactory()
    stat_increment(campaign_id=campaign.pk, metric=DailyStat.Metric.SIGNUPS, day=DAY)
    stat_increment(campaign_id=campaign.pk, metric=DailyStat.Metric.SIGNUPS, count=4, day=DAY)
    stat = DailyStat.objects.get(campaign=campaign, topic=None, metric="signups")
    assert stat.count == 5


def test_it_keeps_topics_and_reasons_apart():
    topic = TopicFactory()
    stat_increment(campaign_id=topic.campaign_id, metric="withdrawals", reason="one_click", day=DAY)
    stat_increment(campaign_id=topic.campaign_id, metric="withdrawals", reason="complaint", day=DAY)
    stat_increment(campaign_id=topic.campaign_id, topic_id=topic.pk, metric="withdrawals", reason="one_click", day=DAY)
    counts = set(DailyStat.objects.values_list("topic_id", "reason", "count"))
    assert counts == {(None, "one_click", 1), (None, "complaint", 1), (topic.pk, "one_click", 1)}


def test_it_ignores_a_count_of_zero():
    campaign = CampaignFactory()
    stat_increment(campaign_id=campaign.pk, metric="sends", count=0, day=DAY)
    assert not DailyStat.objects.exists()
