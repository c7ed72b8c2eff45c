"""One sign-in for the staff area and the admin, optionally on a host of its own."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db


def test_the_admin_login_page_sends_people_to_the_one_sign_in_keeping_next(client):
    response = client.get("/admin/login/?next=/admin/subscriptions/campaign/")

    assert response.status_code == 302
    target = urlparse(response.url)
    assert target.path == reverse("account_login")
    assert parse_qs(target.query)["next"] == ["/admin/subscriptions/campaign/"]


def test_an_anonymous_visit_to_the_admin_ends_at_the_one_sign_in(client):
    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))


@pytest.fixture
def staff_host(settings):
    settings.STAFF_HOST = "staff.tidings.test"
    settings.ALLOWED_HOSTS = ["staff.tidings.test", "tidings.test", "testserver"]


@pytest.mark.parametrize("path", ["/staff/", "/staff/account/login/", "/admin/", "/admin/login/"])
def test_with_a_staff_host_the_staff_and_admin_paths_are_404_on_other_hosts(client, staff_host, path):
    assert client.get(path, HTTP_HOST="tidings.test").status_code == 404


def test_with_a_staff_host_they_answer_on_that_host(client, staff_host):
    assert client.get("/staff/account/login/", HTTP_HOST="staff.tidings.test").status_code == 200
    assert client.get("/staff/account/login/", HTTP_HOST="staff.tidings.test:8443").status_code == 200


def test_with_a_staff_host_signed_in_members_get_404_elsewhere_too(client, staff_host):
    staff_client(client)

    assert client.get("/staff/", HTTP_HOST="staff.tidings.test").status_code == 200
    assert client.get("/staff/", HTTP_HOST="tidings.test").status_code == 404


def test_public_pages_still_answer_on_any_allowed_host(client, staff_host):
    assert client.get(reverse("healthz"), HTTP_HOST="tidings.test").status_code == 200


def test_without_a_staff_host_any_allowed_host_serves_the_staff_area(client):
    assert client.get("/staff/account/login/", HTTP_HOST="localhost").status_code == 200


def test_an_operator_can_find_a_members_authenticators_in_the_admin_to_remove_a_lost_one(client):
    from allauth.mfa.models import Authenticator

    from tests.support.factories import StaffUserFactory
    from tests.support.staff import enrol_totp

    member = StaffUserFactory(is_superuser=False, username="lost.phone")
    enrol_totp(member)
    staff_client(client)
    totp = Authenticator.objects.get(user=member, type="totp")

    response = client.post(f"/admin/mfa/authenticator/{totp.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Authenticator.objects.filter(pk=totp.pk).exists()
