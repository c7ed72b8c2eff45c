"""My campaigns: each campaign's figures and warnings, only for the member's campaigns."""

import datetime
import html
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from redis.exceptions import ConnectionError as RedisConnectionError

from subscriptions import abuse
from subscriptions.models import DailyStat, Mailing, Permission
from subscriptions.services.campaign_summary import BACKLOG_WARNING
from subscriptions.services.signup import stream
from tests.support.factories import CampaignFactory, SubscriberFactory, TopicFactory

pytestmark = pytest.mark.django_db

# 14:20 in London in January (GMT): the breaker's hour turns at 15:00.
NOW = datetime.datetime(2030, 1, 15, 14, 20, tzinfo=datetime.UTC)
TODAY = NOW.date()
HOME = reverse("staff:home")


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def stat(campaign, metric, count, *, days_ago=0, topic=None, reason=""):
    DailyStat.objects.create(
        campaign=campaign, topic=topic, metric=metric, reason=reason, count=count,
        day=TODAY - datetime.timedelta(days=days_ago),
    )  # fmt: skip


def scheduled(campaign, subject, at, status=Mailing.Status.SCHEDULED):
    return Mailing.objects.create(campaign=campaign, subject=subject, body="Hello", status=status, scheduled_at=at)


def card(response, campaign) -> str:
    """The text of one campaign's card on the page, tags stripped and spaces collapsed."""
    page = response.content.decode()
    found = re.search(rf'<section[^>]*id="campaign-{campaign.pk}".*?</section>', page, re.DOTALL)
    assert found, f"no card for {campaign.name}"
    return text(found.group(0))


def text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def page_text(response) -> str:
    return text(response.content.decode())


@pytest.fixture
def campaign_c():
    return CampaignFactory(name="Campaign C, not theirs")


@pytest.fixture
def member_of_a_and_b(campaign_a, campaign_b, make_member):
    member = make_member(campaign_a, Permission.DASHBOARD, Permission.TEAM, name="pat")
    member.memberships.create(campaign=campaign_b, permissions=[Permission.DASHBOARD, Permission.DATA_REQUESTS])
    return member


class TestFigures:
    def test_a_member_sees_each_of_their_campaigns_figures_and_nothing_of_a_third(
        self, campaign_a, campaign_b, campaign_c, member_of_a_and_b, signed_in
    ):
        SubscriberFactory.create_batch(3, campaign=campaign_a)
        SubscriberFactory(campaign=campaign_a, restricted=True)
        SubscriberFactory(campaign=campaign_a, status="pending")
        SubscriberFactory(campaign=campaign_a, status="unsubscribed")
        SubscriberFactory(campaign=campaign_b)
        SubscriberFactory.create_batch(5, campaign=campaign_c)
        stat(campaign_a, "signups", 5)
        stat(campaign_a, "signups", 2, days_ago=6)
        stat(campaign_a, "signups", 100, days_ago=7)  # last week's
        stat(campaign_b, "signups", 4, days_ago=3)
        stat(campaign_c, "signups", 999)
        scheduled(campaign_a, "February news", datetime.datetime(2030, 2, 3, 9, 0, tzinfo=datetime.UTC))
        scheduled(campaign_a, "January news", datetime.datetime(2030, 1, 20, 9, 30, tzinfo=datetime.UTC))
        scheduled(campaign_a, "A draft", None, status=Mailing.Status.DRAFT)
        scheduled(campaign_c, "Campaign C's mailing", datetime.datetime(2030, 1, 16, 9, 0, tzinfo=datetime.UTC))

        response = signed_in(member_of_a_and_b).get(HOME)

        a, b = card(response, campaign_a), card(response, campaign_b)
        assert "Active audience 3 people" in a
        assert "Sign-ups this week 7 " in a
        assert "Next mailing January news Sunday 20 January 2030, 09:30 GMT" in a
        assert "Active audience 1 person" in b
        assert "Sign-ups this week 4 " in b
        assert "Next mailing None scheduled" in b
        page = page_text(response)
        assert "Campaign C" not in page
        assert "999" not in page
        assert f'id="campaign-{campaign_c.pk}"' not in response.content.decode()

    def test_it_keeps_each_campaigns_links_as_the_permissions_allow(
        self, campaign_a, campaign_b, member_of_a_and_b, signed_in
    ):
        page = signed_in(member_of_a_and_b).get(HOME).content.decode()

        assert reverse("staff:team", args=[campaign_a.pk]) in page
        assert reverse("staff:api_keys", args=[campaign_a.pk]) in page
        assert reverse("staff:audit_trail", args=[campaign_a.pk]) not in page
        assert reverse("staff:team", args=[campaign_b.pk]) not in page
        assert reverse("staff:audit_trail", args=[campaign_b.pk]) in page

    def test_it_links_to_the_dashboard_of_each_campaign_whose_counts_the_member_may_see(
        self, campaign_a, make_member, signed_in
    ):
        dashboard = reverse("staff:dashboard", args=[campaign_a.pk])

        assert dashboard in signed_in(make_member(campaign_a, Permission.DASHBOARD)).get(HOME).content.decode()
        assert dashboard not in signed_in(make_member(campaign_a, Permission.DRAFT)).get(HOME).content.decode()

    def test_without_the_dashboard_permission_a_member_sees_the_campaign_but_not_its_counts(
        self, campaign_a, make_member, signed_in
    ):
        SubscriberFactory.create_batch(3, campaign=campaign_a)
        stat(campaign_a, "signups", 5)
        drafter = make_member(campaign_a, Permission.DRAFT, name="dee")

        a = card(signed_in(drafter).get(HOME), campaign_a)

        assert "Campaign A" in a
        assert "You may draft mailings" in a
        assert "Active audience" not in a
        assert "Sign-ups this week" not in a
        assert "you need the permission to see the dashboard and counts" in a

    def test_an_operator_sees_every_campaign(self, campaign_a, campaign_b, campaign_c, signed_in, django_user_model):
        operator = django_user_model.objects.create_superuser("op", "op@staff.example.org", "x-long-enough-password-1")
        SubscriberFactory.create_batch(2, campaign=campaign_c)

        response = signed_in(operator).get(HOME)

        assert "Active audience 2 people" in card(response, campaign_c)
        assert "Active audience 0 people" in card(response, campaign_a)
        assert "Campaign B" in card(response, campaign_b)

    def test_topic_counts_are_not_added_to_the_campaigns(self, campaign_a, member_of_a_and_b, signed_in):
        stat(campaign_a, "signups", 2)
        stat(campaign_a, "sends", 1000, topic=TopicFactory(campaign=campaign_a))

        a = card(signed_in(member_of_a_and_b).get(HOME), campaign_a)

        assert "Sign-ups this week 2 " in a
        assert "Complaints, last 30 days No emails sent" in a


class TestComplaintRate:
    @pytest.mark.parametrize(
        ("complaints", "shown", "warning"),
        [
            (9, "0.09%", None),
            (10, "0.10% Warning", "Complaints are high: 0.10% of emails in the last 30 days were reported as spam."),
            (29, "0.29% Warning", "Complaints are high: 0.29%"),
            (30, "0.30% Over the limit", "Complaints are over the bulk senders' limit: 0.30%"),
        ],
    )
    def test_the_warning_starts_at_its_threshold(
        self, complaints, shown, warning, campaign_a, member_of_a_and_b, signed_in
    ):
        stat(campaign_a, "sends", 6000, days_ago=29)
        stat(campaign_a, "sends", 4000, days_ago=2)
        stat(campaign_a, "complaints", complaints, days_ago=1)
        stat(campaign_a, "sends", 1_000_000, days_ago=30)  # outside the 30 days
        stat(campaign_a, "complaints", 5000, days_ago=30)

        a = card(signed_in(member_of_a_and_b).get(HOME), campaign_a)

        assert f"Complaints, last 30 days {shown} {complaints} complaints from 10,000 emails" in a
        if warning is None:
            assert "Warning" not in a
        else:
            assert f"Warning {warning}" in a
        assert ("over the bulk senders' limit" in a) == (complaints >= 30)


class TestSignupCap:
    def test_the_warning_shows_once_the_hours_confirmation_emails_reach_the_cap(
        self, settings, campaign_a, campaign_b, member_of_a_and_b, signed_in
    ):
        settings.CONFIRMATION_EMAILS_PER_HOUR = 3
        client = signed_in(member_of_a_and_b)
        for n in range(2):
            abuse.claim_confirmation_email(campaign_id=campaign_a.pk, email=f"person{n}@example.com")

        assert "Sign-ups are turned away" not in card(client.get(HOME), campaign_a)

        # Reading the counter did not count: a third email is still let through.
        abuse.claim_confirmation_email(campaign_id=campaign_a.pk, email="person2@example.com")
        response = client.get(HOME)

        assert (
            "Warning Sign-ups are turned away until 15:00: the campaign has sent 3 confirmation emails this hour"
            in card(response, campaign_a)
        )
        assert "Sign-ups are turned away" not in card(response, campaign_b)
        with pytest.raises(abuse.RateLimited):
            abuse.claim_confirmation_email(campaign_id=campaign_a.pk, email="person3@example.com")

    def test_last_hours_emails_do_not_count(self, settings, campaign_a, member_of_a_and_b, signed_in):
        settings.CONFIRMATION_EMAILS_PER_HOUR = 1
        with time_machine.travel(NOW - datetime.timedelta(minutes=30), tick=False):
            abuse.claim_confirmation_email(campaign_id=campaign_a.pk, email="person@example.com")

        assert "Sign-ups are turned away" not in card(signed_in(member_of_a_and_b).get(HOME), campaign_a)


class TestIntakeBacklog:
    def waiting(self, redis_client, count: int) -> None:
        pipe = redis_client.pipeline(transaction=False)
        for _ in range(count):
            pipe.xadd(stream.STREAM, {stream.FIELD: "sealed"})
        pipe.execute()

    def test_it_warns_everyone_once_more_than_a_minute_of_sign_ups_waits(
        self, redis_client, member_of_a_and_b, signed_in, django_user_model
    ):
        operator = django_user_model.objects.create_superuser("op", "op@staff.example.org", "x-long-enough-password-1")
        self.waiting(redis_client, BACKLOG_WARNING)
        assert "waiting to be recorded" not in page_text(signed_in(member_of_a_and_b).get(HOME))

        self.waiting(redis_client, 1)
        member_page = page_text(signed_in(member_of_a_and_b).get(HOME))
        operator_page = page_text(signed_in(operator).get(HOME))

        assert BACKLOG_WARNING == 9000, "a minute of recording at 150 sign-ups a second"
        # The queue is every campaign's: only operators see how long it is.
        assert "Warning More than a minute's sign-ups are waiting to be recorded." in member_page
        assert "9,001" not in member_page
        assert "Warning 9,001 sign-ups are waiting to be recorded, about 2 minutes of recording." in operator_page
        assert member_page.count("waiting to be recorded") == 1, "once for the page, not per campaign"
        assert "Tell your platform operator if this lasts." in member_page
        assert "Check that the transactional workers are running" in operator_page

    def test_without_redis_the_page_says_what_it_could_not_check(
        self, monkeypatch, campaign_a, member_of_a_and_b, signed_in
    ):
        def down(*args, **kwargs):
            raise RedisConnectionError("Connection refused")

        monkeypatch.setattr(stream, "backlog", down)
        monkeypatch.setattr(abuse, "confirmation_caps", down)
        stat(campaign_a, "signups", 3)

        response = signed_in(member_of_a_and_b).get(HOME)

        assert response.status_code == 200
        assert "could not be checked just now, because Redis did not answer" in page_text(response)
        assert "Sign-ups this week 3 " in card(response, campaign_a)


def test_the_page_makes_the_same_queries_however_many_campaigns(
    campaign_a, member_of_a_and_b, signed_in, django_assert_max_num_queries
):
    def with_data(campaign):
        SubscriberFactory(campaign=campaign)
        stat(campaign, "signups", 3)
        stat(campaign, "sends", 100)
        stat(campaign, "complaints", 1)
        scheduled(campaign, f"News of {campaign.name}", NOW + datetime.timedelta(days=1))

    with_data(campaign_a)
    client = signed_in(member_of_a_and_b)
    client.get(HOME)  # the session's first-visit writes are not the page's
    with CaptureQueriesContext(connection) as one:
        client.get(HOME)
    for n in range(6):
        campaign = CampaignFactory(name=f"Campaign {n}")
        member_of_a_and_b.memberships.create(campaign=campaign, permissions=[Permission.DASHBOARD, Permission.TEAM])
        with_data(campaign)

    with django_assert_max_num_queries(len(one)):
        response = client.get(HOME)

    assert page_text(response).count("Active audience 1 person") == 7
