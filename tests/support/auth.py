"""Signing in through the real pages, as a browser would, for the tests in tests/auth."""

from django.test import Client
from django.urls import reverse

from tests.support.staff import totp_code

PASSWORD = "correct horse battery staple"


def sign_in_with_password(client: Client, login: str, password: str = PASSWORD, **extra):
    return client.post(reverse("account_login"), {"login": login, "password": password}, **extra)


def sign_in(client: Client, login: str, secret: str, password: str = PASSWORD):
    """Password, then the authenticator app's code: the whole sign-in."""
    response = sign_in_with_password(client, login, password)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response.url == reverse("mfa_authenticate")
    return client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
