"""The campaign dashboard: figures for members with the dashboard permission only, topics
sorted and filtered by GET parameters, charts as SVG images under their own CSP, CSV."""

import csv
import datetime
import io
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import DailyStat, Mailing, Topic
from tests.staff.conftest import refusals
from tests.support.factories import SubscriberFactory, SubscriptionFactory, TopicFactory

pytestmark = pytest.mark.django_db

PAGES = ["dashboard", "dashboard_daily_csv", "dashboard_topics_csv", "dashboard_chart"]


def url(name, campaign, **query):
    args = [campaign.pk, "joining"] if name == "dashboard_chart" else [campaign.pk]
    path = reverse(f"staff:{name}", args=args)
    return path + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


def stat(campaign, metric, count, *, days_ago=0, reason=""):
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    DailyStat.objects.create(campaign=campaign, day=day, metric=metric, reason=reason, count=count)


def follow(campaign, *topics, **subscriber):
    person = SubscriberFactory(campaign=campaign, **subscriber)
    for topic in topics:
        SubscriptionFactory(subscriber=person, topic=topic)


@pytest.fixture
def viewer_a(campaign_a, make_member):
    return make_member(campaign_a, "dashboard", name="viewer")


@pytest.fixture
def figures_a(campaign_a):
    general = TopicFactory(campaign=campaign_a, name="General updates")
    kent = TopicFactory(campaign=campaign_a, name="Kent Police", kind=Topic.Kind.ENTITY)
    essex = TopicFactory(campaign=campaign_a, name="Essex Police", kind=Topic.Kind.ENTITY)
    follow(campaign_a, general, kent)
    follow(campaign_a, general)
    follow(campaign_a, essex)
    follow(campaign_a, essex)
    follow(campaign_a, essex)
    stat(campaign_a, "signups", 6, days_ago=1)
    stat(campaign_a, "confirmations", 3)
    stat(campaign_a, "withdrawals", 2, reason="one_click")
    stat(campaign_a, "erasures", 2, reason="one_click")
    Mailing.objects.create(
        campaign=campaign_a, subject="November news", body="Hello", status=Mailing.Status.SENT,
        finished_at=timezone.now(), sent_count=1000, bounced_count=12, complained_count=2,
    )  # fmt: skip
    return campaign_a


def test_it_shows_the_campaigns_figures(figures_a, viewer_a, signed_in):
    response = signed_in(viewer_a).get(url("dashboard", figures_a))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>5</strong> active subscribers" in page
    assert [(t.name, t.active) for t in response.context["topics"]] == [
        ("Essex Police", 3),
        ("General updates", 2),
        ("Kent Police", 1),
    ]
    assert "<strong>50.0%</strong> (3 confirmations of 6 sign-ups)" in page
    assert "November news" in page
    assert "1.20%" in page  # bounces: 12 of 1,000
    assert "0.20%" in page  # complaints: 2 of 1,000
    assert '<strong class="govuk-tag govuk-tag--yellow">Warning</strong>' in page
    assert "Withdrawals: One-click unsubscribe" in page
    assert url("dashboard_chart", figures_a) in page
    alts = re.findall(r'<img class="tidings-chart" src="[^"]*" alt="([^"]*)"', page)
    assert alts[1].startswith("Chart of withdrawals per day, by reason, ")
    summary = ": 2 withdrawals in all (One-click unsubscribe: 2)."
    assert alts[1].endswith(summary + " The table below has each day&#x27;s numbers.")


def test_a_mailing_over_the_complaint_limit_says_so_in_words(campaign_a, viewer_a, signed_in):
    Mailing.objects.create(
        campaign=campaign_a, subject="Too much", body="Hello", status=Mailing.Status.SENT,
        finished_at=timezone.now(), sent_count=1000, complained_count=3,
    )  # fmt: skip
    page = signed_in(viewer_a).get(url("dashboard", campaign_a)).content.decode()
    assert '<strong class="govuk-tag govuk-tag--red">Over the limit</strong>' in page


@pytest.mark.parametrize("name", PAGES)
def test_a_member_without_the_dashboard_permission_gets_404_and_an_audit_row(name, campaign_a, make_member, signed_in):
    member = make_member(campaign_a, "draft", "send", "manage", "data_requests", "team")
    before = refusals(campaign_a.pk)
    assert signed_in(member).get(url(name, campaign_a)).status_code == 404
    assert refusals(campaign_a.pk) == before + 1


@pytest.mark.parametrize("name", PAGES)
def test_another_campaigns_dashboard_is_404(name, campaign_a, campaign_b, viewer_a, signed_in):
    before = refusals(campaign_b.pk)
    assert signed_in(viewer_a).get(url(name, campaign_b)).status_code == 404
    assert refusals(campaign_b.pk) == before + 1


@pytest.mark.parametrize("name", PAGES)
def test_someone_signed_out_is_sent_to_sign_in(name, client, campaign_a):
    response = client.get(url(name, campaign_a))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_topics_sort_by_count_either_way_and_filter_by_name(figures_a, viewer_a, signed_in):
    client = signed_in(viewer_a)

    def names(**query):
        return [topic.name for topic in client.get(url("dashboard", figures_a, **query)).context["topics"]]

    assert names(sort="count") == ["Essex Police", "General updates", "Kent Police"]
    assert names(sort="count", order="asc") == ["Kent Police", "General updates", "Essex Police"]
    assert names(order="desc") == ["Kent Police", "General updates", "Essex Police"]
    assert names(q="police") == ["Essex Police", "Kent Police"]
    page = client.get(url("dashboard", figures_a, sort="count", q="police")).content.decode()
    assert 'aria-sort="descending"' in page
    assert f'href="/staff/campaigns/{figures_a.pk}/?sort=count&amp;order=asc&amp;q=police#topics"' in page
    assert "2 topics whose name contains “police”" in page


def test_bad_parameters_fall_back_to_the_defaults(figures_a, viewer_a, signed_in):
    query = {"period": "7", "sort": "email", "order": "sideways", "q": "x" * 500}
    response = signed_in(viewer_a).get(url("dashboard", figures_a), query)
    assert response.status_code == 200
    chosen = response.context["query"]
    assert (chosen.period, chosen.sort, chosen.order, len(chosen.q)) == (30, "name", "asc", 100)
    response = signed_in(viewer_a).get(url("dashboard", figures_a), {"period": "-1", "q": "\x00Kent\x1b"})
    assert response.context["query"].period == 30
    assert [topic.name for topic in response.context["topics"]] == ["Kent Police"]


def test_the_period_is_chosen_by_a_link(figures_a, viewer_a, signed_in):
    stat(figures_a, "signups", 4, days_ago=200)
    client = signed_in(viewer_a)
    page = client.get(url("dashboard", figures_a)).content.decode()
    assert '<strong aria-current="page">Last 30 days</strong>' in page
    assert f'href="/staff/campaigns/{figures_a.pk}/?period=365#daily"' in page
    response = client.get(url("dashboard", figures_a, period=365))
    assert len(response.context["series"].signups) == 365
    assert "<strong>30.0%</strong> (3 confirmations of 10 sign-ups)" in response.content.decode()
    assert '<strong aria-current="page">Last 365 days</strong>' in response.content.decode()


def test_the_daily_csv_has_every_day_of_the_period(figures_a, viewer_a, signed_in):
    response = signed_in(viewer_a).get(url("dashboard_daily_csv", figures_a, period=90))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate()
    since = today - datetime.timedelta(days=89)
    filename = f"{figures_a.slug}-daily-{since.isoformat()}-to-{today.isoformat()}.csv"
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "Day",
        "Sign-ups",
        "Confirmations",
        "Withdrawals: One-click unsubscribe",
        "Withdrawals (all reasons)",
        "Erasures",
    ]
    assert len(rows) == 1 + 90
    assert rows[1] == [since.isoformat(), "0", "0", "0", "0", "0"]
    assert rows[-2] == [(today - datetime.timedelta(days=1)).isoformat(), "6", "0", "0", "0", "0"]
    assert rows[-1] == [today.isoformat(), "0", "3", "2", "2", "2"]


def test_the_topics_csv_follows_the_table_and_defuses_formulas(campaign_a, viewer_a, signed_in):
    for name in ['=HYPERLINK("http://evil.example")', "+44 police", "-1 police", "@SUM(A1)", "Kent Police"]:
        follow(campaign_a, TopicFactory(campaign=campaign_a, name=name))
    response = signed_in(viewer_a).get(url("dashboard_topics_csv", campaign_a, sort="name", order="desc"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"] == f'attachment; filename="{campaign_a.slug}-active-subscribers-by-topic.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["Topic", "Kind", "Archived", "Active subscribers"],
        ["Kent Police", "General updates", "no", "1"],
        ["'@SUM(A1)", "General updates", "no", "1"],
        ['\'=HYPERLINK("http://evil.example")', "General updates", "no", "1"],
        ["'-1 police", "General updates", "no", "1"],
        ["'+44 police", "General updates", "no", "1"],
    ]
    filtered = signed_in(viewer_a).get(url("dashboard_topics_csv", campaign_a, q="kent"))
    assert filtered.content.decode().splitlines()[1:] == ["Kent Police,General updates,no,1"]


def test_a_chart_is_an_svg_image_with_a_csp_of_its_own(figures_a, viewer_a, signed_in):
    response = signed_in(viewer_a).get(url("dashboard_chart", figures_a, period=90))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    policy = response["Content-Security-Policy"]
    nonce = re.fullmatch(
        r"default-src 'none'; style-src 'nonce-([\w-]+)'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        policy,
    )
    assert nonce, policy
    svg = response.content.decode()
    assert svg.count("<style") == 1
    assert f'nonce="{nonce.group(1)}"' in svg
    assert "<script" not in svg
    assert " style=" not in svg
    assert "Sign-ups" in svg
    assert "no-cache" in response["Cache-Control"]
    withdrawals = signed_in(viewer_a).get(reverse("staff:dashboard_chart", args=[figures_a.pk, "withdrawals"]))
    assert "One-click unsubscribe" in withdrawals.content.decode()
    erasures = signed_in(viewer_a).get(reverse("staff:dashboard_chart", args=[figures_a.pk, "erasures"]))
    assert "Erasures per day" in erasures.content.decode()
    missing = signed_in(viewer_a).get(reverse("staff:dashboard_chart", args=[figures_a.pk, "other"]))
    assert missing.status_code == 404


def test_a_year_of_43_forces_is_a_handful_of_queries(campaign_a, viewer_a, signed_in, django_assert_max_num_queries):
    forces = [TopicFactory(campaign=campaign_a, kind=Topic.Kind.ENTITY) for _ in range(43)]
    for force in forces:
        follow(campaign_a, force)
    today = timezone.localdate()
    DailyStat.objects.bulk_create(
        DailyStat(campaign=campaign_a, topic=topic, day=today - datetime.timedelta(days=n), metric=metric, count=1)
        for n in range(365)
        for topic in [None, *forces]
        for metric in ("signups", "confirmations")
    )
    client = signed_in(viewer_a)
    client.get(url("dashboard", campaign_a))  # the session's first request may write it
    responses = {}
    for name in PAGES:
        with django_assert_max_num_queries(12):
            responses[name] = client.get(url(name, campaign_a, period=365))
        assert responses[name].status_code == 200
    assert sum(responses["dashboard"].context["series"].signups) == 365
    assert [topic.active for topic in responses["dashboard"].context["topics"]] == [1] * 43
    assert len(responses["dashboard_daily_csv"].content.decode().splitlines()) == 1 + 365


@pytest.mark.parametrize("name", ["dashboard", "dashboard_daily_csv", "dashboard_topics_csv"])
def test_no_page_or_download_of_campaign_figures_is_kept_in_a_cache(name, figures_a, viewer_a, signed_in):
    response = signed_in(viewer_a).get(url(name, figures_a))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
