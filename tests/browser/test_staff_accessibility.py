"""The staff area's own pages in Debian's Chromium: axe finds no WCAG 2.2 AA violation,
and each page reflows at 320 px with no sideways scrolling.

The pages are those of the staff area (sign-in, second factor, My campaigns, team, API
keys, audit trail, invitations), signed out and signed in; My campaigns also with figures
and every warning showing. The Django admin is the
operators' tool and is not among them. axe is injected from npm's axe-core with the
page's CSP bypassed for that one script; the pages themselves are served as in
production. Skipped where Chromium is not installed.
"""

import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions import abuse
from subscriptions.audit import audit_record
from subscriptions.models import DailyStat, Mailing, Membership, Permission
from subscriptions.services import staff
from subscriptions.services.api_keys import api_key_create
from subscriptions.services.campaign_summary import BACKLOG_WARNING
from subscriptions.services.signup import stream
from tests.support.chromium import BROWSER_TEST
from tests.support.factories import CampaignFactory, SubscriberFactory
from tests.support.staff import staff_client

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = BROWSER_TEST
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
WIDTHS = (1280, 320)


@pytest.fixture
def browser(chromium):
    return chromium


def problems_on(page, url: str, width: int, status: int = 200) -> list[str]:
    page.set_viewport_size({"width": width, "height": 900})
    response = page.goto(url)
    assert response is not None
    assert response.status == status, f"{url} answered {response.status}"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA)
    found = [f"{url} @{width}px: {v['id']} ({v['impact']}): {v['help']}" for v in result["violations"]]
    overflow = page.evaluate("document.documentElement.scrollWidth")
    if overflow > width:
        found.append(f"{url} @{width}px: {overflow} px wide, so it scrolls sideways")
    return found


@pytest.fixture
def campaign_with_history():
    campaign = CampaignFactory(name="Police recruitment updates")
    api_key_create(campaign=campaign, name="Force websites")
    staff.invitation_create(
        campaign=campaign, email="new.member@force.example.org", permissions=[Permission.DRAFT], actor=None
    )
    audit_record(actor=None, action="campaign_end_notice_drafted", campaign_id=campaign.pk, target_type="mailing")
    return campaign


def test_the_signed_out_pages_pass_axe_and_reflow(live_server, browser, campaign_with_history):
    _invitation, token = staff.invitation_create(
        campaign=campaign_with_history, email="casey@force.example.org", permissions=[Permission.SEND], actor=None
    )
    page = browser.new_context(bypass_csp=True).new_page()
    paths = [
        ("/staff/account/login/", 200),
        ("/staff/account/password/reset/", 200),
        (f"/staff/invitations/{token}/", 200),
        ("/staff/invitations/not-a-real-token/", 404),
    ]
    found = [
        problem
        for path, status in paths
        for width in WIDTHS
        for problem in problems_on(page, live_server.url + path, width, status)
    ]
    assert found == [], "\n".join(found)


def test_the_signed_in_pages_pass_axe_and_reflow(live_server, browser, campaign_with_history, django_user_model):
    member = django_user_model.objects.create_user("sam", "sam@force.example.org", "x-long-enough-password-1")
    member.is_staff = True
    member.save()
    Membership.objects.create(user=member, campaign=campaign_with_history, permissions=list(Permission.values))
    client = staff_client(Client(), member)
    context = browser.new_context(bypass_csp=True)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    campaign_id = campaign_with_history.pk
    membership_id = Membership.objects.get(user=member).pk
    paths = [
        "/staff/",
        f"/staff/campaigns/{campaign_id}/team/",
        f"/staff/campaigns/{campaign_id}/team/members/{membership_id}/",
        f"/staff/campaigns/{campaign_id}/api-keys/",
        f"/staff/campaigns/{campaign_id}/audit-trail/",
        "/staff/account/2fa/",
        "/staff/account/sessions/",
        "/staff/account/reauthenticate/",
        "/staff/account/2fa/reauthenticate/",
    ]
    found = [
        problem for path in paths for width in WIDTHS for problem in problems_on(page, live_server.url + path, width)
    ]
    assert found == [], "\n".join(found)


def test_the_enrolment_and_error_pages_pass_axe_and_reflow(live_server, browser, campaign_with_history):
    """A member with no second factor yet is sent to set one up; forms with errors too."""
    member = get_user_model().objects.create_user("new", "new@force.example.org", "x-long-enough-password-1")
    Membership.objects.create(user=member, campaign=campaign_with_history, permissions=[Permission.TEAM])
    client = Client()
    client.force_login(member)
    context = browser.new_context(bypass_csp=True)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    found = [problem for width in WIDTHS for problem in problems_on(page, live_server.url + "/staff/", width)]
    assert page.url.endswith(reverse("mfa_activate_totp")), "sent to enrolment first"
    page.get_by_label("Authenticator code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA)
    found += [f"TOTP form with an error: {v['id']}: {v['help']}" for v in result["violations"]]
    assert page.locator(".govuk-error-summary").is_visible()
    assert found == [], "\n".join(found)


def test_my_campaigns_with_figures_and_every_warning_passes_axe_and_reflows(
    live_server, browser, campaign_with_history, django_user_model, settings, redis_client
):
    """Long numbers, a scheduled mailing, and all three warnings at once: the page at its fullest."""
    campaign = campaign_with_history
    SubscriberFactory.create_batch(3, campaign=campaign)
    today = timezone.localdate()
    for metric, count in (("signups", 12_345), ("sends", 1_234_567), ("complaints", 4_000)):
        DailyStat.objects.create(campaign=campaign, day=today, metric=metric, count=count)
    Mailing.objects.create(
        campaign=campaign, subject="Recruitment opens in Kent: apply by the end of the month", body="Hello",
        status=Mailing.Status.SCHEDULED, scheduled_at=timezone.now() + datetime.timedelta(days=3),
    )  # fmt: skip
    settings.CONFIRMATION_EMAILS_PER_HOUR = 1
    abuse.claim_confirmation_email(campaign_id=campaign.pk, email="someone@example.com")
    pipe = redis_client.pipeline(transaction=False)
    for _ in range(BACKLOG_WARNING + 1):
        pipe.xadd(stream.STREAM, {stream.FIELD: "sealed"})
    pipe.execute()
    member = django_user_model.objects.create_user("kim", "kim@force.example.org", "x-long-enough-password-1")
    Membership.objects.create(user=member, campaign=campaign, permissions=list(Permission.values))
    cookie = staff_client(Client(), member).cookies[settings.SESSION_COOKIE_NAME]
    context = browser.new_context(bypass_csp=True)
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()

    found = [problem for width in WIDTHS for problem in problems_on(page, live_server.url + "/staff/", width)]

    assert found == [], "\n".join(found)
    shown = page.locator("main").inner_text()
    for words in ("sign-ups are waiting to be recorded", "Sign-ups are turned away", "over the bulk senders' limit"):
        assert words in shown, words
    without_js = browser.new_context(java_script_enabled=False)
    without_js.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    plain = without_js.new_page()
    plain.goto(live_server.url + "/staff/")
    assert "12,345" in plain.locator("main").inner_text(), "the figures need no script"
