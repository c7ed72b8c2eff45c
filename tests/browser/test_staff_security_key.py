"""A security key (WebAuthn) for staff sign-in, in a real browser (Debian's Chromium, JavaScript on).

A member who signs in with password and authenticator-app code adds a security key
under "Sign-in security"; Chromium's virtual authenticator (DevTools protocol) plays
the key. Then they sign out, sign in with the password and the key instead of a code,
and the trail shows the key being added. No page on the way logs a CSP violation.
Skipped where Chromium is not installed.
"""

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model

from subscriptions.models import AuditEvent, Membership, Permission
from tests.support.chromium import BROWSER_TEST
from tests.support.factories import CampaignFactory
from tests.support.staff import enrol_totp, totp_code

# Playwright is imported as conftest.py imports it: a missing package skips these tests.
# expect() retries until the page it waits on has loaded; is_visible() looks once.
expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = BROWSER_TEST
PASSWORD = "lantern harbour quietly"
KEY_NAME = "Blue key on my keyring"
# A key that answers without a touch or a PIN prompt, as a real one does once touched.
VIRTUAL_KEY = {
    "protocol": "ctap2",
    "transport": "usb",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@pytest.fixture
def browser_context(settings, chromium):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # live_server is http://localhost:<port>, a secure context to the browser, and fido2
    # (allauth's WebAuthn library) accepts that origin as browsers do. So the origin is
    # checked as in production: the DEBUG-only escape hatch stays off (read per request).
    # The relying party id is the request's host name, "localhost"; SITE_URL plays no part.
    settings.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False
    return chromium.new_context(java_script_enabled=True)


@pytest.fixture
def console(browser_context):
    """Every console message of every page, as (page URL, type, text)."""
    messages: list[tuple[str, str, str]] = []
    browser_context.on("console", lambda message: messages.append((message.page.url, message.type, message.text)))
    # An uncaught exception in a page's script (the WebAuthn glue failing) counts as an error too.
    browser_context.on("weberror", lambda error: messages.append(("", "error", str(error.error))))
    return messages


@pytest.fixture
def pages_served(browser_context):
    """Each HTML page the browser loaded, as (URL, its Content-Security-Policy header)."""
    served: list[tuple[str, str | None]] = []

    def on_response(response):
        if response.request.resource_type == "document" and response.status == 200:
            served.append((response.url, response.headers.get("content-security-policy")))

    browser_context.on("response", on_response)
    return served


@pytest.fixture
def page(browser_context, console):
    page = browser_context.new_page()
    page.set_default_timeout(10_000)
    cdp = browser_context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_KEY})
    return page


def code_for(secret: str) -> str:
    """The app's current code, with a wider margin than totp_code's default: a browser types it slower."""
    return totp_code(secret, margin=3.0)


def sign_in_with_password(page, base_url: str) -> None:
    page.goto(f"{base_url}/staff/account/login/")
    page.get_by_label("Username or email address").fill("casey@force.example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Check it is you")).to_be_visible()


def add_security_key(page, base_url: str) -> None:
    """From any staff page: Sign-in security -> Add -> confirm the password -> name the key -> Add."""
    page.get_by_role("link", name="Sign-in security").click()
    # allauth's "Add" and "Manage" are links drawn as GOV.UK buttons (role="button").
    page.get_by_role("button", name="Add", exact=True).click()
    # Adding a second factor asks for the password again, even just after signing in.
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Add Security Key")).to_be_visible()
    page.get_by_label("Name").fill(KEY_NAME)
    # The page's script calls navigator.credentials.create; the virtual key answers.
    page.get_by_role("button", name="Add", exact=True).click()
    page.wait_for_url(f"{base_url}/staff/account/2fa/")


def test_it_adds_a_security_key_and_signs_in_with_it_instead_of_a_code(live_server, page, console, pages_served):
    campaign = CampaignFactory(name="Police recruitment")
    user = get_user_model().objects.create_user(username="casey", email="casey@force.example.org", password=PASSWORD)
    Membership.objects.create(user=user, campaign=campaign, permissions=[Permission.DASHBOARD])
    secret = enrol_totp(user)
    assert secret

    sign_in_with_password(page, live_server.url)
    page.get_by_label("Code").fill(code_for(secret))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="My campaigns")).to_be_visible()
    add_security_key(page, live_server.url)
    expect(page.get_by_text("You have added 1 security key.")).to_be_visible()
    page.get_by_role("button", name="Manage").click()
    expect(page.get_by_role("cell", name=KEY_NAME)).to_be_visible()
    key = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert key.last_used_at is None
    app_last_used_at = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).last_used_at

    # Sign out; sign in again with the password and the key, no code typed.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Tidings staff")).to_be_visible()
    sign_in_with_password(page, live_server.url)
    page.get_by_role("button", name="Use a security key").click()
    page.wait_for_url(f"{live_server.url}/staff/")
    expect(page.get_by_role("heading", name="My campaigns")).to_be_visible()
    expect(page.get_by_role("heading", name="Police recruitment")).to_be_visible()
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).last_used_at == app_last_used_at

    added = AuditEvent.objects.filter(action="staff_authenticator_added", actor=user)
    assert [(event.target_id, event.details["kind"]) for event in added] == [(key.pk, "webauthn")]
    assert AuditEvent.objects.filter(action="staff_signed_in", actor=user).count() == 2

    # Every page on the way was served under the strict policy, and none broke it.
    assert len(pages_served) >= 10
    assert all(csp and "script-src 'self' 'nonce-" in csp for _url, csp in pages_served), pages_served
    assert [m for m in console if m[1] == "error" or "Content Security Policy" in m[2]] == []
