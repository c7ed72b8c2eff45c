"""Two campaigns, A and B, and members of each signed in as they would be after a
full sign-in with a second factor (and, unless a test says otherwise, a recent
re-authentication, so the riskiest actions do not stop to ask for one)."""

import time

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import get_user_model
from django.test import Client

from subscriptions.models import AuditEvent, Membership
from tests.support.factories import CampaignFactory
from tests.support.staff import staff_client

User = get_user_model()


def reauthenticated(client: Client, user) -> None:
    """Record in the session what allauth records when the member re-enters a password now."""
    session = client.session
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "username": user.username, "reauthenticated": True}
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()


def tracked(client: Client, user) -> None:
    """The UserSession row allauth writes at each sign-in, for the client's session."""
    UserSession.objects.create(user=user, session_key=client.session.session_key, ip="192.0.2.7", user_agent="test")


def refusals(campaign_id: int | None = None) -> int:
    rows = AuditEvent.objects.filter(action="access_refused")
    return (rows.filter(campaign__isnull=True) if campaign_id is None else rows.filter(campaign_id=campaign_id)).count()


@pytest.fixture
def campaign_a():
    return CampaignFactory(name="Campaign A")


@pytest.fixture
def campaign_b():
    return CampaignFactory(name="Campaign B")


@pytest.fixture
def make_member(db):
    def make(campaign, *permissions: str, name: str | None = None) -> User:
        name = name or f"member{User.objects.count()}"
        user = User.objects.create_user(name, f"{name}@staff.example.org", "x-long-enough-password-1", is_staff=True)
        Membership.objects.create(user=user, campaign=campaign, permissions=list(permissions))
        return user

    return make


@pytest.fixture
def signed_in():
    """signed_in(user, reauth=True) -> a new Client signed in as `user`."""

    def sign_in(user, *, reauth: bool = True) -> Client:
        client = staff_client(Client(), user)
        if reauth:
            reauthenticated(client, user)
        return client

    return sign_in
