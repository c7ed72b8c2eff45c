"""Every staff account has a second factor: without one, the staff and admin areas show only enrolment."""

import pytest
from django.urls import reverse

from tests.support.auth import sign_in_with_password
from tests.support.factories import StaffUserFactory
from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def unenrolled(client):
    user = StaffUserFactory(username="newcomer", email="newcomer@team.example.org")
    response = sign_in_with_password(client, "newcomer")
    # Without an authenticator the password completes sign-in; the middleware takes over.
    assert response.status_code == 302
    return user


@pytest.mark.parametrize(
    "path", ["/staff/", "/admin/", "/admin/subscriptions/campaign/", "/staff/account/password/change/"]
)
def test_a_member_without_a_second_factor_is_sent_to_enrolment(client, unenrolled, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


def test_posts_are_refused_too(client, unenrolled):
    response = client.post("/admin/subscriptions/campaign/add/", {"name": "Sneaky"})

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


@pytest.mark.parametrize("name", ["mfa_activate_totp", "mfa_index", "mfa_add_webauthn"])
def test_the_enrolment_pages_open_right_after_signing_in(client, unenrolled, name):
    response = client.get(reverse(name))

    assert response.status_code == 200


def test_signing_out_still_works(client, unenrolled):
    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_enrolling_an_authenticator_app_opens_the_staff_area_and_shows_recovery_codes(client, unenrolled):
    from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY

    from tests.support.staff import totp_code

    page = client.get(reverse("mfa_activate_totp")).content.decode()
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page  # shown as text, not only inside the QR code

    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    assert response.url == reverse("mfa_view_recovery_codes")
    codes = client.get(response.url)
    assert len(codes.context["unused_codes"]) == 10
    assert client.get(reverse("staff:home")).status_code == 200


def test_public_pages_are_not_affected(client, unenrolled):
    assert client.get(reverse("healthz")).status_code == 200


def test_a_member_with_a_second_factor_goes_straight_in(client):
    staff_client(client)

    assert client.get(reverse("staff:home")).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_recovery_codes_alone_are_not_a_second_factor(client):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    user = StaffUserFactory()
    RecoveryCodes.activate(user)
    client.force_login(user)

    assert client.get(reverse("staff:home")).url == reverse("mfa_activate_totp")
    assert Authenticator.objects.filter(user=user).count() == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", False),
        ("DEBUG", True),
        ("MFA_PASSKEY_LOGIN_ENABLED", True),
        ("MFA_ALLOW_UNVERIFIED_EMAIL", False),
        ("MFA_SUPPORTED_TYPES", ["recovery_codes"]),
        ("ACCOUNT_LOGIN_BY_CODE_ENABLED", True),
        ("ACCOUNT_EMAIL_VERIFICATION", "mandatory"),
    ],
)
def test_the_requirement_stays_on_under_settings_that_might_seem_to_lift_it(client, settings, name, value):
    setattr(settings, name, value)
    user = StaffUserFactory()
    client.force_login(user)

    assert client.get(reverse("staff:home")).url == reverse("mfa_activate_totp")


def test_a_password_reset_request_by_anyone_does_not_block_enrolment(client):
    from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY

    from tests.support.staff import totp_code

    StaffUserFactory(username="target", email="target@team.example.org")
    client.post(reverse("account_reset_password"), {"email": "target@team.example.org"})
    sign_in_with_password(client, "target")
    client.get(reverse("mfa_activate_totp"))

    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(client.session[SECRET_SESSION_KEY])})

    assert response.url == reverse("mfa_view_recovery_codes")
