"""Idle timeout and absolute session lifetime: either passing signs the member out, saying why."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from subscriptions.models import AuditEvent

pytestmark = pytest.mark.django_db


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_member_idle_for_longer_than_the_timeout_is_signed_out_and_told_why(client, signed_in, traveller):
    traveller.shift(dt.timedelta(minutes=30, seconds=1))

    response = client.get(reverse("staff:home"))

    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next=%2Fstaff%2F"
    assert "_auth_user_id" not in client.session
    assert messages_of(response)[-1] == "You were signed out because you had not used the staff area for 30 minutes."
    assert AuditEvent.objects.filter(action="staff_signed_out", actor=signed_in, details__reason="idle").exists()


def test_activity_keeps_the_session_alive(client, signed_in, traveller):
    for _ in range(4):
        traveller.shift(dt.timedelta(minutes=29))
        assert client.get(reverse("staff:home")).status_code == 200


def test_the_idle_timeout_is_a_setting(client, signed_in, traveller, settings):
    settings.STAFF_IDLE_TIMEOUT_MINUTES = 5
    traveller.shift(dt.timedelta(minutes=5, seconds=1))

    assert client.get(reverse("staff:home")).url.startswith(reverse("account_login"))


def test_even_an_active_session_ends_after_the_maximum_lifetime(client, signed_in, traveller):
    for _ in range(24):
        traveller.shift(dt.timedelta(minutes=29))
        assert client.get(reverse("staff:home")).status_code == 200
    traveller.shift(dt.timedelta(minutes=25))  # 12 hours and 1 minute after signing in

    response = client.get(reverse("staff:home"))

    assert response.url.startswith(reverse("account_login"))
    assert (
        messages_of(response)[-1] == "You were signed out because you signed in more than 12 hours ago. Sign in again."
    )
    assert AuditEvent.objects.filter(action="staff_signed_out", details__reason="max_age").exists()


def test_a_post_after_the_timeout_is_not_acted_on(client, signed_in, traveller):
    from allauth.mfa.models import Authenticator

    codes_before = Authenticator.objects.get(user=signed_in, type="recovery_codes").data
    traveller.shift(dt.timedelta(hours=1))

    response = client.post(reverse("mfa_generate_recovery_codes"))

    # No ?next= for a POST: signing in again must not re-send it.
    assert response.url == reverse("account_login")
    assert Authenticator.objects.get(user=signed_in, type="recovery_codes").data == codes_before


def test_an_expired_session_on_a_public_page_is_ended_quietly_and_the_page_served(client, signed_in, traveller):
    traveller.shift(dt.timedelta(minutes=31))

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="staff_signed_out", details__reason="idle").exists()
