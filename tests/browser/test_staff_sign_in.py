"""Staff sign-in in a real browser (Debian's Chromium, JavaScript off).

invitation -> choose a password -> forced authenticator-app enrolment (the code
computed from the secret the page shows) -> My campaigns -> sign out -> sign in with
password and code -> idle for longer than the timeout -> the next page is the login.
Skipped where Chromium is not installed.
"""

import re

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from subscriptions.models import Permission
from subscriptions.services import staff
from subscriptions.staff_auth import LAST_SEEN_AT
from tests.support.chromium import BROWSER_TEST
from tests.support.factories import CampaignFactory
from tests.support.staff import totp_code

# Playwright is imported as conftest.py imports it: a missing package skips these tests.
# expect() retries until the page it waits on has loaded; is_visible() looks once.
expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = BROWSER_TEST
PASSWORD = "lantern harbour quietly"


@pytest.fixture
def browser_context(settings, chromium):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return chromium.new_context(java_script_enabled=False)


@pytest.fixture
def page(browser_context):
    return browser_context.new_page()


def code_for(secret: str) -> str:
    """The app's current code, with a wider margin than totp_code's default: a browser types it slower."""
    return totp_code(secret, margin=3.0)


def accept_invitation(page, url: str) -> None:
    """Open the invitation and create the account with a chosen password."""
    page.goto(url)
    page.get_by_label("First name").fill("Casey")
    page.get_by_label("Last name").fill("Jones")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("Type the password again").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()


def enrol_authenticator_app(page) -> str:
    """Read the secret the enrolment page shows and turn the app on with its code; returns the secret."""
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    page.get_by_label("Authenticator code").fill(code_for(secret))
    page.get_by_role("button", name="Turn on").click()
    return secret


def continue_past_recovery_codes(page) -> None:
    """The ten recovery codes are shown once; go on to the staff area."""
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert page.locator("#recovery_codes li").count() == 10
    page.get_by_role("button", name="Continue to My campaigns").click()


def sign_in(page, email: str, secret: str) -> None:
    """From the sign-in page: the password, then the authenticator code."""
    page.get_by_label("Username or email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Check it is you")).to_be_visible()
    page.get_by_label("Code").fill(code_for(secret))
    page.get_by_role("button", name="Continue").click()


def session_last_seen_move_back(browser_context, *, seconds: int) -> None:
    """Move the browser's session's last activity `seconds` into the past."""
    session_key = next(c["value"] for c in browser_context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = SessionStore(session_key=session_key)
    session[LAST_SEEN_AT] -= seconds
    session.save()


def test_an_invited_member_enrols_a_second_factor_signs_in_and_is_timed_out(live_server, browser_context, page):
    campaign = CampaignFactory(name="Police recruitment")
    _invitation, token = staff.invitation_create(
        campaign=campaign, email="casey@force.example.org", permissions=[Permission.DASHBOARD], actor=None
    )

    # The invitation: choose a password.
    accept_invitation(page, f"{live_server.url}/staff/invitations/{token}/")

    # Nothing in the staff area before a second factor: straight to enrolment.
    secret = enrol_authenticator_app(page)
    continue_past_recovery_codes(page)
    expect(page.get_by_role("heading", name="My campaigns")).to_be_visible()
    expect(page.get_by_role("heading", name="Police recruitment")).to_be_visible()

    # Sign out, then in again: password, then the code.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Tidings staff")).to_be_visible()
    sign_in(page, "casey@force.example.org", secret)
    expect(page.get_by_role("heading", name="My campaigns")).to_be_visible()

    # Idle for 31 minutes: move the session's last activity back, as time passing would.
    session_last_seen_move_back(browser_context, seconds=31 * 60)

    page.goto(f"{live_server.url}/staff/")
    expect(page.get_by_role("heading", name="Sign in to Tidings staff")).to_be_visible()
    told_why = "You were signed out because you had not used the staff area for 30 minutes."
    expect(page.get_by_text(told_why)).to_be_visible()
    page.goto(f"{live_server.url}/staff/")
    expect(page.get_by_role("heading", name="Sign in to Tidings staff")).to_be_visible()
