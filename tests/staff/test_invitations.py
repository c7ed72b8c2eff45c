"""The invitation page: the link is the credential, works once, and says nothing when it cannot be used."""

import datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Membership
from subscriptions.services import staff
from subscriptions.views.staff.invitations import ACCEPT_LIMITS

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a long and unusual passphrase 7"


def mid_minute() -> datetime.datetime:
    """Halfway through the current minute. With the clock stopped there, every request of
    a test counts in the same fixed window: none can fall into the next one mid-loop."""
    return timezone.now().replace(second=30, microsecond=0)


@pytest.fixture
def manager(campaign_a, make_member):
    return make_member(campaign_a, "team", name="alice")


@pytest.fixture
def invitation(campaign_a, manager):
    _, token = staff.invitation_create(
        campaign=campaign_a, email="carol@example.org", permissions=["draft"], actor=manager
    )
    return token


def url(token: str) -> str:
    return reverse("staff:invitation_accept", args=[token])


def answers(**fields) -> dict[str, str]:
    return {"first_name": "Carol", "last_name": "Diaz", "password1": PASSWORD, "password2": PASSWORD} | fields


def test_it_shows_the_campaign_and_asks_for_a_name_and_a_password(client, invitation):
    response = client.get(url(invitation))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Join the Campaign A team" in page
    assert 'for="id_first_name"' in page
    assert 'for="id_password2"' in page


def test_accepting_signs_in_and_sends_to_second_factor_enrolment(client, campaign_a, invitation):
    response = client.post(url(invitation), answers())
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:home")
    user = User.objects.get(username="carol@example.org")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert Membership.objects.get(user=user, campaign=campaign_a).permissions == ["draft"]
    nothing_yet = client.get(reverse("staff:home"))
    assert nothing_yet["Location"] == reverse("mfa_activate_totp")


def test_different_passwords_are_refused(client, invitation):
    response = client.post(url(invitation), answers(password2="something else entirely 9"))
    assert response.status_code == 400
    assert "The two passwords are not the same." in response.content.decode()
    assert not User.objects.filter(username="carol@example.org").exists()


def test_a_weak_password_is_refused_with_the_reason(client, invitation):
    response = client.post(url(invitation), answers(password1="password", password2="password"))
    assert response.status_code == 400
    assert "This password is too" in response.content.decode()
    assert not User.objects.filter(username="carol@example.org").exists()


def test_a_used_link_is_gone(client, invitation):
    client.post(url(invitation), answers())
    response = Client().get(url(invitation))
    assert response.status_code == 410
    assert "This invitation link cannot be used" in response.content.decode()
    assert Client().post(url(invitation), answers(first_name="Eve")).status_code == 410
    assert User.objects.filter(first_name="Eve").count() == 0


def test_an_expired_link_is_gone_and_tells_nothing(client, invitation):
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=73)):
        response = client.get(url(invitation))
    assert response.status_code == 410
    assert "Campaign A" not in response.content.decode()


def test_an_unknown_link_is_not_found(client):
    response = client.get(url("not-a-real-token"))
    assert response.status_code == 404
    assert "This invitation link cannot be used" in response.content.decode()


def test_posting_is_rate_limited_by_client_address(client, invitation):
    allowed = ACCEPT_LIMITS[0].count
    with time_machine.travel(mid_minute(), tick=False):
        for _ in range(allowed):
            client.post(url(invitation), answers(password2="mismatch"))
        response = client.post(url(invitation), answers())
        assert response.status_code == 429
        assert not User.objects.filter(username="carol@example.org").exists()
        assert Client(REMOTE_ADDR="192.0.2.99").post(url(invitation), answers()).status_code == 302


class TestSomeoneWithAnAccount:
    @pytest.fixture
    def carol(self):
        return User.objects.create_user("carol", "carol@example.org", PASSWORD, is_staff=True)

    def test_they_are_asked_to_sign_in_first(self, client, campaign_a, invitation, carol):
        page = client.get(url(invitation)).content.decode()
        assert "Sign in to it" in page
        client.post(url(invitation), answers())
        assert not Membership.objects.filter(user=carol).exists()

    def test_signed_in_as_it_they_join_with_a_button(self, campaign_a, invitation, carol, signed_in):
        client = signed_in(carol)
        assert "Join the team" in client.get(url(invitation)).content.decode()
        response = client.post(url(invitation))
        assert response["Location"] == reverse("staff:home")
        assert Membership.objects.get(user=carol, campaign=campaign_a).permissions == ["draft"]
