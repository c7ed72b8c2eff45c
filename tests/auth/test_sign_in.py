import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.support.auth import sign_in, sign_in_with_password
from tests.support.factories import StaffUserFactory
from tests.support.staff import enrol_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    # Staff made from an invitation have their email address as username.
    user = StaffUserFactory(username="alex@team.example.org", email="alex@team.example.org", is_superuser=False)
    return user, enrol_totp(user)


def test_it_asks_for_the_second_factor_after_the_password_and_then_signs_in(client, member):
    user, secret = member

    response = sign_in(client, "alex@team.example.org", secret)

    assert response.status_code == 302
    assert response.url == reverse("staff:home")
    assert client.get(reverse("staff:home")).context["user"] == user


def test_the_password_alone_does_not_sign_in_someone_with_a_second_factor(client, member):
    sign_in_with_password(client, "alex@team.example.org")

    response = client.get(reverse("staff:home"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("typed", ["sam", "SAM@Team.Example.org"])
def test_it_signs_in_by_username_or_by_email_address(client, typed):
    user = StaffUserFactory(username="sam", email="sam@team.example.org")
    secret = enrol_totp(user)

    assert sign_in(client, typed, secret).url == reverse("staff:home")
    assert client.get(reverse("staff:home")).context["user"] == user


def test_a_wrong_second_factor_code_is_refused_with_a_message(client, member):
    sign_in_with_password(client, "alex@team.example.org")

    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})

    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert client.get(reverse("staff:home")).status_code == 302


def test_there_is_no_public_sign_up(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new@example.org",
            "username": "new",
            "password1": "a long new passphrase",
            "password2": "a long new passphrase",
        },
    )

    assert "Sign-up is closed" in response.content.decode()
    assert not get_user_model().objects.filter(username="new").exists()


def test_the_login_page_offers_no_sign_up_link_and_labels_every_field(client):
    page = client.get(reverse("account_login")).content.decode()

    assert reverse("account_signup") not in page
    assert '<label class="govuk-label" for="id_login">Username or email address</label>' in page
    assert '<label class="govuk-label" for="id_password">' in page
    assert 'class="govuk-button"' in page
