"""Sign-ins, sign-outs, failures and second-factor changes in the audit trail."""

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from subscriptions.models import AuditEvent
from tests.support.auth import PASSWORD, sign_in, sign_in_with_password
from tests.support.factories import StaffUserFactory
from tests.support.staff import enrol_totp, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    user = StaffUserFactory(username="ali", email="ali@team.example.org")
    return user, enrol_totp(user)


def events(action):
    return list(AuditEvent.objects.filter(action=action))


def test_a_sign_in_is_recorded_once_the_second_factor_is_given(client, member):
    user, secret = member
    sign_in_with_password(client, "ali")
    assert events("staff_signed_in") == []

    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    [event] = events("staff_signed_in")
    assert event.actor == user
    assert event.actor_name == "ali"
    assert event.details["client_address"] == "127.0.0.1"


def test_a_sign_out_is_recorded(client, member):
    user, secret = member
    sign_in(client, "ali", secret)

    client.post(reverse("account_logout"))

    [event] = events("staff_signed_out")
    assert event.actor == user
    assert event.details["reason"] == "signed_out"


def test_a_failed_sign_in_keeps_the_name_typed_shortened_and_never_the_password(client, member):
    long_name = "x" * 200
    sign_in_with_password(client, "ali", "wrong password one")
    sign_in_with_password(client, long_name, "wrong password two")

    first, second = AuditEvent.objects.filter(action="staff_sign_in_failed").order_by("pk")
    assert first.details["attempted_name"] == "ali"
    assert first.actor is None
    assert second.details["attempted_name"] == "x" * 64
    for event in (first, second):
        assert "wrong password" not in str(event.details)


def test_a_locked_out_attempt_is_recorded(client, member):
    for _ in range(5):
        sign_in_with_password(client, "ali", "wrong")

    sign_in_with_password(client, "ali", PASSWORD)

    [event] = events("staff_sign_in_locked_out")
    assert event.details["attempted_name"] == "ali"


def test_a_wrong_second_factor_code_is_recorded(client, member):
    user, _secret = member
    sign_in_with_password(client, "ali")

    client.post(reverse("mfa_authenticate"), {"code": "123456"})

    [event] = events("staff_second_factor_failed")
    assert event.actor == user
    assert event.details["kind"] == "totp"
    assert "123456" not in str(event.details)


def test_a_recovery_code_used_to_sign_in_is_recorded(client, member):
    user, _secret = member
    codes = Authenticator.objects.get(user=user, type="recovery_codes").wrap().get_unused_codes()
    sign_in_with_password(client, "ali")

    client.post(reverse("mfa_authenticate"), {"code": codes[0]})

    [event] = events("staff_recovery_code_used")
    assert event.actor == user
    assert event.details["codes_left"] == 9
    assert codes[0] not in str(event.details)


def test_enrolling_records_the_authenticator_and_the_recovery_codes(client, django_capture_on_commit_callbacks):
    from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY

    user = StaffUserFactory(username="new")
    sign_in_with_password(client, "new")
    client.get(reverse("mfa_activate_totp"))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_activate_totp"), {"code": totp_code(client.session[SECRET_SESSION_KEY])})

    kinds = sorted(event.details["kind"] for event in events("staff_authenticator_added"))
    assert kinds == ["recovery_codes", "totp"]
    assert all(event.actor == user for event in events("staff_authenticator_added"))


def test_regenerating_recovery_codes_and_removing_the_app_are_recorded(
    client, member, django_capture_on_commit_callbacks
):
    user, secret = member
    sign_in(client, "ali", secret)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_generate_recovery_codes"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_deactivate_totp"))

    assert [e.details["kind"] for e in events("staff_recovery_codes_generated")] == ["recovery_codes"]
    # Without the app, the recovery codes go too (allauth removes them).
    assert sorted(e.details["kind"] for e in events("staff_authenticator_removed")) == ["recovery_codes", "totp"]
    assert not Authenticator.objects.filter(user=user, type="totp").exists()


def test_a_password_change_is_recorded(client, member):
    user, secret = member
    sign_in(client, "ali", secret)

    client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "a brand new passphrase", "password2": "a brand new passphrase"},
    )

    [event] = events("staff_password_changed")
    assert event.actor == user
