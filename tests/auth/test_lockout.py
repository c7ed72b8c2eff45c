"""Throttling and lockout: per account, per client address, and at the second-factor step."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from tests.support.auth import sign_in, sign_in_with_password
from tests.support.factories import StaffUserFactory
from tests.support.staff import enrol_totp, totp_code

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed attempts to sign in to this account or from this address."
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def member():
    user = StaffUserFactory(username="robin", email="robin@team.example.org")
    return user, enrol_totp(user)


def fail(client, login, times, **extra):
    for _ in range(times):
        response = sign_in_with_password(client, login, "not the password", **extra)
        assert "not correct" in response.content.decode()


def test_after_five_wrong_passwords_the_right_one_is_refused_with_a_message(client, member):
    fail(client, "robin", 5)

    response = sign_in_with_password(client, "robin")

    assert response.status_code == 200
    assert LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lockout_ends_after_five_minutes(client, member):
    _user, secret = member
    with time_machine.travel(START, tick=False) as traveller:
        fail(client, "robin", 5)
        traveller.shift(dt.timedelta(minutes=4))
        assert LOCKED in sign_in_with_password(client, "robin").content.decode()
        traveller.shift(dt.timedelta(minutes=1, seconds=1))

        assert sign_in(client, "robin", secret).url == reverse("staff:home")


def test_the_username_and_the_email_address_share_one_allowance(client, member):
    fail(client, "robin", 3)
    fail(client, "ROBIN@team.example.org", 2)

    assert LOCKED in sign_in_with_password(client, "robin").content.decode()


def test_one_client_address_is_limited_across_accounts(client):
    for n in range(10):
        StaffUserFactory(username=f"member{n}")
        fail(client, f"member{n}", 1, REMOTE_ADDR="203.0.113.9")
    StaffUserFactory(username="untouched")

    response = sign_in_with_password(client, "untouched", REMOTE_ADDR="203.0.113.9")

    assert LOCKED in response.content.decode()
    # Another address is not held up by that one.
    assert sign_in_with_password(client, "untouched", REMOTE_ADDR="198.51.100.7").status_code == 302


def test_wrong_second_factor_codes_lock_the_step_too(client, member):
    _user, secret = member
    sign_in_with_password(client, "robin")
    for _ in range(5):
        response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
        assert "Incorrect code" in response.content.decode()

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})

    assert LOCKED in response.content.decode()
    assert client.get(reverse("staff:home")).status_code == 302
