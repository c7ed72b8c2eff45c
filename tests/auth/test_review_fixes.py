"""Ways round the sign-in rules that a review found, closed: a set-aside action replayed
long after the member moved on, the admin's own password form, and claiming an address."""

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from subscriptions.models import AuditEvent, Invitation, Membership, Permission
from tests.support.factories import CampaignFactory, StaffUserFactory
from tests.support.staff import enrol_totp, staff_client

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def manager():
    campaign = CampaignFactory()
    user = StaffUserFactory(is_superuser=False)
    Membership.objects.create(user=user, campaign=campaign, permissions=[Permission.TEAM])
    return user


def test_an_action_set_aside_for_re_authentication_is_dropped_once_the_member_goes_elsewhere(manager):
    client = staff_client(Client(), manager)
    campaign = Membership.objects.get(user=manager).campaign
    asked = client.post(
        reverse("staff:team_invite", args=[campaign.pk]), {"email": "x@example.org", "permissions": ["draft"]}
    )
    assert "reauthenticate" in asked["Location"]
    client.get(reverse("staff:home"))  # changed their mind
    confirmed = client.post(asked["Location"], {"password": PASSWORD})
    assert confirmed.status_code == 302, "the password was accepted, so only the dropping can explain no invitation"
    assert not Invitation.objects.exists()


def test_the_action_is_still_carried_out_when_confirmed_straight_away(manager, django_capture_on_commit_callbacks):
    client = staff_client(Client(), manager)
    campaign = Membership.objects.get(user=manager).campaign
    asked = client.post(
        reverse("staff:team_invite", args=[campaign.pk]), {"email": "x@example.org", "permissions": ["draft"]}
    )
    assert client.get(asked["Location"]).status_code == 200  # the page asking for the password
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(asked["Location"], {"password": PASSWORD})
    assert confirmed.status_code == 302  # the password was accepted
    assert Invitation.objects.get().email == "x@example.org"


def test_the_admins_password_form_sends_staff_to_the_throttled_audited_one():
    client = staff_client(Client(), StaffUserFactory())
    response = client.get(reverse("admin:password_change"))
    assert response.status_code == 302
    assert response["Location"] == reverse("account_change_password")
    posted = client.post(reverse("admin:password_change"), {"old_password": "wrong", "new_password1": "x"})
    assert posted["Location"] == reverse("account_change_password")


def test_a_member_cannot_add_or_switch_the_address_on_their_account(manager):
    client = staff_client(Client(), manager)
    url = "/staff/account/email/"
    assert client.get(url).status_code == 404
    response = client.post(url, {"action_add": "", "email": "newhire@example.org"})
    assert response.status_code == 404
    manager.refresh_from_db()
    assert manager.email != "newhire@example.org"
    assert not manager.emailaddress_set.filter(email="newhire@example.org").exists()
    assert not AuditEvent.objects.filter(action__startswith="email").exists()


def test_an_operator_deleting_a_members_lost_authenticator_is_in_the_trail(manager):
    enrol_totp(manager)
    app = Authenticator.objects.get(user=manager, type=Authenticator.Type.TOTP)
    operator = StaffUserFactory()
    client = staff_client(Client(), operator)
    response = client.post(reverse("admin:mfa_authenticator_delete", args=[app.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Authenticator.objects.filter(pk=app.pk).exists()
    deleted = AuditEvent.objects.get(action="staff_authenticator_deleted_by_operator")
    assert (deleted.actor_id, deleted.target_id, deleted.details["kind"]) == (operator.pk, manager.pk, "totp")


def test_a_member_cannot_reach_anyones_authenticators_in_the_admin(manager):
    enrol_totp(manager)
    app = Authenticator.objects.get(user=manager, type=Authenticator.Type.TOTP)
    client = staff_client(Client(), manager)
    assert client.get(reverse("admin:mfa_authenticator_changelist")).status_code == 403
    assert client.post(reverse("admin:mfa_authenticator_delete", args=[app.pk]), {"post": "yes"}).status_code == 403
    assert Authenticator.objects.filter(pk=app.pk).exists()
