"""allauth's pages in the staff shell: GOV.UK classes, labelled fields, no sign-up."""

import re

import pytest
from django.urls import reverse

from tests.support.factories import StaffUserFactory
from tests.support.staff import staff_client

pytestmark = pytest.mark.django_db

ANONYMOUS_PAGES = ["account_login", "account_reset_password", "account_reset_password_done", "account_signup"]
SIGNED_IN_PAGES = [
    "account_logout",
    "account_reauthenticate",
    "account_change_password",
    "mfa_index",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_deactivate_totp",
    "mfa_add_webauthn",
    "usersessions_list",
]


def assert_in_staff_shell(response):
    page = response.content.decode()
    assert response.status_code == 200
    assert "Tidings staff</title>" in page
    assert 'class="govuk-heading-l"' in page
    assert "govuk-frontend.min.css" in page
    # Every input a person types into has a label.
    for input_id in re.findall(r'<input class="govuk-input[^"]*" id="([^"]+)"', page):
        assert f'for="{input_id}"' in page


@pytest.mark.parametrize("name", ANONYMOUS_PAGES)
def test_each_page_before_sign_in_uses_the_staff_shell(client, name):
    assert_in_staff_shell(client.get(reverse(name)))


@pytest.mark.parametrize("name", SIGNED_IN_PAGES)
def test_each_page_after_sign_in_uses_the_staff_shell(client, name):
    user = StaffUserFactory()
    staff_client(client, user)
    # Some of these ask for a fresh re-authentication; give it, as allauth records it.
    client.post(reverse("account_reauthenticate"), {"password": "correct horse battery staple"})

    assert_in_staff_shell(client.get(reverse(name)))


def test_errors_are_summarised_and_the_title_says_so(client):
    response = client.post(reverse("account_login"), {"login": "", "password": ""})
    page = response.content.decode()

    assert "<title>Error: Sign in \N{EN DASH} Tidings staff</title>" in page
    assert 'class="govuk-error-summary"' in page
    assert '<a href="#id_login">Enter your username or email address</a>' in page
    assert 'aria-describedby=" id_login-error"' in page or 'aria-describedby="id_login-error"' in page
