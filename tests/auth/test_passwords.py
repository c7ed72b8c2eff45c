"""Password rules (Django's four validators, applied by allauth's forms) and reset by email."""

import re
from urllib.parse import urlparse

import pytest
from django.contrib.auth import authenticate
from django.core import mail
from django.urls import reverse

from subscriptions.models import AuditEvent
from tests.support.auth import PASSWORD, sign_in, sign_in_with_password
from tests.support.factories import StaffUserFactory
from tests.support.staff import enrol_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    user = StaffUserFactory(username="pat.jones", email="pat.jones@team.example.org", first_name="Pat")
    return user, enrol_totp(user)


def open_reset_link(client, email="pat.jones@team.example.org"):
    response = client.post(reverse("account_reset_password"), {"email": email})
    assert response.status_code == 302
    link = re.search(r"https?://\S+/password/reset/key/\S+/", mail.outbox[-1].body).group(0)
    response = client.get(urlparse(link).path)
    assert response.status_code == 302  # allauth moves the key out of the URL into the session
    return response.url


@pytest.mark.parametrize(
    ("password", "complaint"),
    [
        ("short", "This password is too short. It must contain at least 12 characters."),
        ("password1234", "This password is too common."),
        ("938475610293", "This password is entirely numeric."),
        ("pat.jones.team", "The password is too similar to the"),
    ],
)
def test_a_reset_refuses_passwords_that_break_the_rules(client, member, password, complaint):
    set_password_url = open_reset_link(client)

    response = client.post(set_password_url, {"password1": password, "password2": password})

    assert response.status_code == 200
    assert complaint in response.content.decode()
    assert authenticate(username="pat.jones", password=password) is None


def test_a_reset_by_email_sets_a_new_password_and_is_audited(client, member):
    user, _secret = member
    set_password_url = open_reset_link(client)

    response = client.post(
        set_password_url, {"password1": "quiet harbour lantern", "password2": "quiet harbour lantern"}
    )

    assert response.status_code == 302
    assert authenticate(username="pat.jones", password="quiet harbour lantern") == user
    assert AuditEvent.objects.filter(action="staff_password_reset", actor=user).exists()
    # The reset does not skip the second factor.
    assert sign_in_with_password(client, "pat.jones", "quiet harbour lantern").url == reverse("mfa_authenticate")


def test_a_reset_link_works_once(client, member):
    set_password_url = open_reset_link(client)
    client.post(set_password_url, {"password1": "quiet harbour lantern", "password2": "quiet harbour lantern"})

    response = client.post(set_password_url, {"password1": "another long phrase", "password2": "another long phrase"})

    assert authenticate(username="pat.jones", password="another long phrase") is None
    assert response.status_code in (200, 302)


def test_asking_for_a_reset_of_an_unknown_address_says_the_same_and_sends_nothing(client, member):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})

    assert response.status_code == 302
    assert mail.outbox == []


def test_changing_the_password_applies_the_rules_too(client, member):
    _user, secret = member
    sign_in(client, "pat.jones", secret)

    response = client.post(
        reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": "1", "password2": "1"}
    )

    assert response.status_code == 200
    assert "This password is too short." in response.content.decode()
    assert authenticate(username="pat.jones", password=PASSWORD) is not None


def test_a_password_reset_lifts_a_lockout(client, member):
    _user, secret = member
    for _ in range(5):
        sign_in_with_password(client, "pat.jones", "wrong")
    assert "Too many failed attempts" in sign_in_with_password(client, "pat.jones").content.decode()

    set_password_url = open_reset_link(client)
    client.post(set_password_url, {"password1": "quiet harbour lantern", "password2": "quiet harbour lantern"})

    assert sign_in(client, "pat.jones", secret, password="quiet harbour lantern").url == reverse("staff:home")
