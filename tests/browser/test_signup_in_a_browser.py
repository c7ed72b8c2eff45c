"""The sign-up journey in a real browser (Debian's Chromium, JavaScript off).

Proves what the test client cannot: that a browser under our Referrer-Policy and CSP
actually submits our forms (the sign-up page's Origin check and the confirm form's
CSRF check pass), and that the journey needs no JavaScript.
Skipped where Chromium is not installed.
"""

import re
from urllib.parse import urlparse

import pytest
from django.core import mail

from subscriptions.models import Subscriber
from tests.support.chromium import BROWSER_TEST
from tests.support.factories import PrivacyNoticeFactory, SignupFormFactory, TopicFactory

pytestmark = BROWSER_TEST


@pytest.fixture
def page(settings, chromium):
    settings.SIGNUP_MIN_FILL_SECONDS = 0
    return chromium.new_context(java_script_enabled=False).new_page()


@pytest.fixture
def form():
    kent = TopicFactory(slug="kent-police", name="Kent Police", kind="entity")
    essex = TopicFactory(campaign=kent.campaign, slug="essex-police", name="Essex Police", kind="entity")
    PrivacyNoticeFactory(campaign=kent.campaign)
    return SignupFormFactory(campaign=kent.campaign, slug="forces", topics=[kent, essex])


def test_a_person_signs_up_and_confirms_without_javascript(live_server, page, form):
    response = page.goto(f"{live_server.url}/c/{form.campaign.slug}/forces/")
    assert response.headers["referrer-policy"] == "no-referrer"

    page.get_by_label("Email address").fill("browser@example.com")
    page.get_by_label("Essex Police").check()
    page.get_by_label(form.consent_wording).check()
    page.get_by_role("button", name="Sign up").click()
    assert page.get_by_role("heading", name="Check your email").is_visible()

    link = re.search(r"https?://\S+/confirm/\S+/", mail.outbox[-1].body).group(0)
    page.goto(live_server.url + urlparse(link).path)
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_role("heading", name="You are subscribed").is_visible()

    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert [s.topic.slug for s in subscriber.subscriptions.all()] == ["essex-police"]


def test_mistakes_are_summarised_and_what_was_typed_is_kept(live_server, page, form):
    page.goto(f"{live_server.url}/c/{form.campaign.slug}/forces/")
    page.get_by_label("Email address").fill("not-an-address")
    page.get_by_role("button", name="Sign up").click()

    summary = page.locator(".govuk-error-summary")
    assert summary.is_visible()
    assert "Enter an email address in the correct format" in summary.inner_text()
    assert "Select at least one topic" in summary.inner_text()
    assert page.get_by_label("Email address").input_value() == "not-an-address"
    assert page.title().startswith("Error:")
    assert not Subscriber.objects.exists()
