"""The campaign dashboard in Debian's Chromium, with a year of figures for 43 forces: axe
finds no WCAG 2.2 AA violation, the page reflows at 320 px, the charts load as images
under the site's own CSP (not bypassed), and sorting and filtering work without
JavaScript."""

import datetime

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from subscriptions.models import DailyStat, Mailing, Membership, Permission, Topic
from tests.browser.test_staff_accessibility import AXE, WCAG_22_AA, WIDTHS, problems_on
from tests.support.chromium import BROWSER_TEST
from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory
from tests.support.staff import staff_client

pytestmark = BROWSER_TEST
REASONS = ("one_click", "unsubscribe_page", "complaint", "hard_bounce")


def _a_year_of_counts(campaign, general, forces) -> None:
    today = timezone.localdate()
    rows = []
    for n in range(365):
        day = today - datetime.timedelta(days=n)
        rows += [
            DailyStat(campaign=campaign, day=day, metric="signups", count=20 + n % 9),
            DailyStat(campaign=campaign, day=day, metric="confirmations", count=15 + n % 7),
            DailyStat(campaign=campaign, day=day, metric="erasures", count=2 + n % 3, reason="one_click"),
        ]
        rows += [
            DailyStat(campaign=campaign, day=day, metric="withdrawals", count=1 + (n + i) % 3, reason=reason)
            for i, reason in enumerate(REASONS)
        ]
    DailyStat.objects.bulk_create(rows)
    for index, topic in enumerate([general, *forces]):
        for _ in range(index % 4 + 1):
            SubscriptionFactory(subscriber=SubscriberFactory(campaign=campaign), topic=topic)


@pytest.fixture
def police():
    campaign = CampaignFactory(name="Police recruitment updates")
    general = TopicFactory(campaign=campaign, name="General updates about police recruitment")
    forces = [
        TopicFactory(campaign=campaign, name=f"Force number {n} Constabulary", kind=Topic.Kind.ENTITY)
        for n in range(1, 44)
    ]
    forces[0].name, forces[1].name = "Kent Police", "Avon and Somerset Constabulary"
    Topic.objects.bulk_update(forces[:2], ["name"])
    _a_year_of_counts(campaign, general, forces)
    finished = timezone.now() - datetime.timedelta(days=3)
    for subject, complaints in [("November recruitment news", 2), ("Open evenings near you", 4), ("Quiet one", 0)]:
        Mailing.objects.create(
            campaign=campaign, subject=subject, body="Hello", status=Mailing.Status.SENT, finished_at=finished,
            sent_count=1200, bounced_count=9, complained_count=complaints,
        )  # fmt: skip
    return campaign


@pytest.fixture
def page_as_viewer(live_server, chromium, police):
    """(bypass_csp) -> a page signed in as a member who may see the dashboard only."""
    member = get_user_model().objects.create_user("viewer", "viewer@force.example.org", "x-long-enough-password-1")
    Membership.objects.create(user=member, campaign=police, permissions=[Permission.DASHBOARD])
    client = staff_client(Client(), member)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]

    def open_page(*, bypass_csp: bool, javascript: bool = True):
        context = chromium.new_context(bypass_csp=bypass_csp, java_script_enabled=javascript)
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
        return context.new_page()

    return open_page


def test_the_dashboard_passes_axe_and_reflows(live_server, page_as_viewer, police):
    page = page_as_viewer(bypass_csp=True)
    base = f"{live_server.url}/staff/campaigns/{police.pk}/"
    found = []
    for query in ("", "?period=365&sort=count", "?q=police&period=90"):
        for width in WIDTHS:
            found += problems_on(page, base + query, width)
    # The table of each day's numbers, opened.
    page.set_viewport_size({"width": 320, "height": 900})
    page.goto(base + "?period=365")
    page.locator("#daily-numbers summary").click()
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA)
    found += [f"daily table open: {v['id']}: {v['help']}" for v in result["violations"]]
    if page.evaluate("document.documentElement.scrollWidth") > 320:
        found.append("daily table open: the page scrolls sideways at 320 px")
    assert found == [], "\n".join(found)


def test_the_charts_load_under_the_sites_csp(live_server, page_as_viewer, police):
    page = page_as_viewer(bypass_csp=False)
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{live_server.url}/staff/campaigns/{police.pk}/?period=90")
    page.wait_for_load_state("networkidle")
    images = page.evaluate(
        """() => [...document.querySelectorAll('img.tidings-chart')].map(
            img => ({alt: img.alt, complete: img.complete, width: img.naturalWidth}))"""
    )
    assert len(images) == 3
    assert all(image["complete"] and image["width"] > 0 for image in images), images
    assert images[0]["alt"].startswith("Chart of sign-ups and confirmations per day")
    violations = [text for text in messages if "Content Security Policy" in text]
    assert violations == []
    # Opened on its own, a chart draws under its own policy with no violation either.
    page.goto(f"{live_server.url}/staff/campaigns/{police.pk}/dashboard/withdrawals.svg?period=30")
    assert page.evaluate("getComputedStyle(document.querySelector('text.title')).fontFamily").startswith("arial")
    assert [text for text in messages if "Content Security Policy" in text] == []


def test_sorting_and_filtering_work_without_javascript(live_server, page_as_viewer, police):
    page = page_as_viewer(bypass_csp=False, javascript=False)
    page.goto(f"{live_server.url}/staff/campaigns/{police.pk}/")
    page.get_by_role("link", name="Active subscribers (sort by number, most first)").click()
    first = page.locator("#topics-table tbody tr").first
    assert first.locator("td").last.inner_text() == "4"
    page.get_by_label("Show topics whose name contains").fill("kent")
    page.get_by_role("button", name="Filter topics").click()
    rows = page.locator("#topics-table tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("th").inner_text() == "Kent Police"
    assert "sort=count" in page.url
    page.get_by_role("link", name="Last 365 days").click()
    assert "Totals for the last 365 days" in page.content()
    assert page.locator("#topics-table tbody tr").count() == 1  # the filter is kept
