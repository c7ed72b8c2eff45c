"""The re-authentication helpers other views call before the riskiest actions."""

import datetime as dt

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from subscriptions.staff_auth import reauthenticate_redirect, reauthentication_needed, reauthentication_required
from tests.support.auth import PASSWORD

pytestmark = pytest.mark.django_db


def request_with_session_of(client, user):
    """A request carrying `client`'s session, as a view guarding an action would see it."""
    request = RequestFactory().get("/staff/")
    request.session = client.session
    request.user = user
    return request


def reauthenticate(client):
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302
    return response


def test_a_fresh_sign_in_still_needs_reauthentication_for_a_risky_action(client, signed_in):
    assert reauthentication_needed(request_with_session_of(client, signed_in))


def test_after_reauthenticating_it_is_not_needed_for_the_timeout(client, signed_in, traveller):
    reauthenticate(client)
    assert not reauthentication_needed(request_with_session_of(client, signed_in))

    traveller.shift(dt.timedelta(seconds=301))

    assert reauthentication_needed(request_with_session_of(client, signed_in))


def test_the_redirect_goes_to_allauths_reauthentication_and_back_to_next(client, signed_in):
    request = request_with_session_of(client, signed_in)

    response = reauthenticate_redirect(request, "/staff/campaigns/3/erase/")

    assert response.status_code == 302
    assert response.url == f"{reverse('account_reauthenticate')}?next=%2Fstaff%2Fcampaigns%2F3%2Ferase%2F"
    assert client.post(response.url, {"password": PASSWORD}).url == "/staff/campaigns/3/erase/"


def test_the_redirect_never_sends_anyone_to_another_site(client, signed_in):
    response = reauthenticate_redirect(request_with_session_of(client, signed_in), "https://evil.example/")

    assert response.url.endswith("?next=%2Fstaff%2F")


def test_a_wrong_password_does_not_reauthenticate(client, signed_in):
    response = client.post(reverse("account_reauthenticate"), {"password": "not it"})

    assert response.status_code == 200
    assert reauthentication_needed(request_with_session_of(client, signed_in))


def test_the_decorator_sends_the_member_to_reauthenticate_then_runs_the_view(client, signed_in, traveller):
    calls = []

    @reauthentication_required
    def erase(request):
        calls.append(request.method)
        return HttpResponse("erased")

    from django.test import override_settings
    from django.urls import path

    from config import urls as project_urls

    class urlconf:
        urlpatterns = [path("staff/test-erase/", erase), *project_urls.urlpatterns]

    with override_settings(ROOT_URLCONF=urlconf):
        first = client.post("/staff/test-erase/", {"confirm": "yes"})
        assert first.status_code == 302
        assert first.url.startswith(reverse("account_reauthenticate"))
        assert calls == []

        # The suspended POST is replayed once the password is confirmed.
        replayed = client.post(first.url, {"password": PASSWORD})
        assert replayed.content == b"erased"
        assert calls == ["POST"]

        assert client.post("/staff/test-erase/").content == b"erased"
        traveller.shift(dt.timedelta(seconds=301))
        assert client.post("/staff/test-erase/").status_code == 302
