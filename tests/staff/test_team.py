"""The team page: members, permissions, invitations, removal, each checked against the campaign."""

import pytest
from django.urls import reverse

from subscriptions.models import AuditEvent, Invitation, Membership
from subscriptions.services import staff
from tests.staff.conftest import refusals, tracked

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_a(campaign_a, make_member):
    return make_member(campaign_a, "team", "dashboard", name="alice")


@pytest.fixture
def drafter_a(campaign_a, make_member):
    return make_member(campaign_a, "draft", name="devon-drafter")


@pytest.fixture
def manager_b(campaign_b, make_member):
    return make_member(campaign_b, "team", name="bob")


def team_url(campaign):
    return reverse("staff:team", args=[campaign.pk])


def member_url(campaign, membership, action=""):
    name = "staff:team_member_remove" if action == "remove" else "staff:team_member"
    return reverse(name, args=[campaign.pk, membership.pk])


class TestTeamPage:
    def test_a_team_manager_sees_members_and_open_invitations(self, campaign_a, manager_a, drafter_a, signed_in):
        staff.invitation_create(campaign=campaign_a, email="carol@example.org", permissions=["draft"], actor=manager_a)
        response = signed_in(manager_a).get(team_url(campaign_a))
        assert response.status_code == 200
        page = response.content.decode()
        assert "devon-drafter" in page
        assert "Draft mailings" in page
        assert "carol@example.org" in page

    def test_a_member_without_the_permission_gets_404_and_it_is_audited(self, campaign_a, drafter_a, signed_in):
        response = signed_in(drafter_a).get(team_url(campaign_a))
        assert response.status_code == 404
        assert refusals(campaign_a.pk) == 1

    def test_a_member_of_another_campaign_gets_404_and_it_is_audited(self, campaign_a, manager_b, signed_in):
        response = signed_in(manager_b).get(team_url(campaign_a))
        assert response.status_code == 404
        assert refusals(campaign_a.pk) == 1

    def test_the_home_page_links_to_it_only_for_team_managers(self, campaign_a, manager_a, drafter_a, signed_in):
        assert team_url(campaign_a) in signed_in(manager_a).get(reverse("staff:home")).content.decode()
        assert team_url(campaign_a) not in signed_in(drafter_a).get(reverse("staff:home")).content.decode()


class TestInvite:
    def test_it_invites_and_mails_the_link(
        self, campaign_a, manager_a, signed_in, mailoutbox, django_capture_on_commit_callbacks
    ):
        client = signed_in(manager_a)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("staff:team_invite", args=[campaign_a.pk]),
                {"email": "carol@example.org", "permissions": ["draft", "send"]},
            )
        assert response.status_code == 302
        invitation = Invitation.objects.get(campaign=campaign_a)
        assert (invitation.email, invitation.permissions) == ("carol@example.org", ["draft", "send"])
        assert mailoutbox[0].to == ["carol@example.org"]

    def test_a_form_without_permissions_shows_the_error_and_invites_nobody(self, campaign_a, manager_a, signed_in):
        response = signed_in(manager_a).post(
            reverse("staff:team_invite", args=[campaign_a.pk]), {"email": "carol@example.org"}
        )
        assert response.status_code == 400
        page = response.content.decode()
        assert "There is a problem" in page
        assert "Choose at least one permission." in page
        assert not Invitation.objects.exists()

    def test_it_asks_for_a_fresh_sign_in_first(self, campaign_a, manager_a, signed_in):
        response = signed_in(manager_a, reauth=False).post(
            reverse("staff:team_invite", args=[campaign_a.pk]), {"email": "carol@example.org", "permissions": ["draft"]}
        )
        assert response.status_code == 302
        assert "reauthenticate" in response["Location"]
        assert not Invitation.objects.exists()

    def test_the_invitation_asked_for_is_sent_once_the_password_is_confirmed(
        self, campaign_a, manager_a, signed_in, mailoutbox, django_capture_on_commit_callbacks
    ):
        client = signed_in(manager_a, reauth=False)
        asked = client.post(
            reverse("staff:team_invite", args=[campaign_a.pk]), {"email": "carol@example.org", "permissions": ["draft"]}
        )
        assert not Invitation.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            confirmed = client.post(asked["Location"], {"password": "x-long-enough-password-1"})
        assert confirmed.status_code == 302
        assert confirmed["Location"] == reverse("staff:team", args=[campaign_a.pk])
        assert Invitation.objects.get().email == "carol@example.org"
        assert [message.to for message in mailoutbox] == [["carol@example.org"]]

    def test_a_member_of_another_campaign_cannot_invite_into_it(self, campaign_a, manager_b, signed_in):
        response = signed_in(manager_b).post(
            reverse("staff:team_invite", args=[campaign_a.pk]),
            {"email": "mallory@example.org", "permissions": ["team"]},
        )
        assert response.status_code == 404
        assert not Invitation.objects.exists()
        assert refusals(campaign_a.pk) == 1


class TestChangePermissions:
    def test_a_team_manager_changes_a_members_permissions(self, campaign_a, manager_a, drafter_a, signed_in):
        membership = Membership.objects.get(user=drafter_a)
        response = signed_in(manager_a).post(member_url(campaign_a, membership), {"permissions": ["draft", "send"]})
        assert response.status_code == 302
        membership.refresh_from_db()
        assert membership.permissions == ["draft", "send"]

    def test_the_only_team_manager_cannot_drop_their_own_team_permission(self, campaign_a, manager_a, signed_in):
        own = Membership.objects.get(user=manager_a)
        response = signed_in(manager_a).post(member_url(campaign_a, own), {"permissions": ["dashboard"]})
        assert response.status_code == 400
        assert "only member who manages this team" in response.content.decode()
        own.refresh_from_db()
        assert "team" in own.permissions

    def test_a_manager_who_gives_up_the_team_goes_home(self, campaign_a, manager_a, make_member, signed_in):
        make_member(campaign_a, "team")
        own = Membership.objects.get(user=manager_a)
        response = signed_in(manager_a).post(member_url(campaign_a, own), {"permissions": ["dashboard"]})
        assert response["Location"] == reverse("staff:home")
        own.refresh_from_db()
        assert own.permissions == ["dashboard"]

    def test_a_member_of_a_under_bs_url_is_refused(self, campaign_a, campaign_b, manager_b, drafter_a, signed_in):
        membership = Membership.objects.get(user=drafter_a)
        response = signed_in(manager_b).post(member_url(campaign_b, membership), {"permissions": ["team"]})
        assert response.status_code == 404
        membership.refresh_from_db()
        assert membership.permissions == ["draft"]
        assert refusals(campaign_b.pk) == 1

    def test_as_url_is_refused_to_a_member_of_b(self, campaign_a, manager_b, drafter_a, signed_in):
        membership = Membership.objects.get(user=drafter_a)
        response = signed_in(manager_b).post(member_url(campaign_a, membership), {"permissions": ["team"]})
        assert response.status_code == 404
        membership.refresh_from_db()
        assert membership.permissions == ["draft"]
        assert refusals(campaign_a.pk) == 1


class TestRemove:
    def test_the_removed_member_is_signed_out_at_once(self, campaign_a, manager_a, drafter_a, signed_in):
        drafter = signed_in(drafter_a)
        tracked(drafter, drafter_a)
        assert drafter.get(reverse("staff:home")).status_code == 200
        membership = Membership.objects.get(user=drafter_a)
        response = signed_in(manager_a).post(member_url(campaign_a, membership, "remove"))
        assert response.status_code == 302
        assert not Membership.objects.filter(pk=membership.pk).exists()
        after = drafter.get(reverse("staff:home"))
        assert after.status_code == 302
        assert after["Location"].startswith(reverse("account_login"))
        assert AuditEvent.objects.get(action="member_removed").details["sessions_ended"] == 1

    def test_a_member_of_a_under_bs_url_is_not_removed(self, campaign_a, campaign_b, manager_b, drafter_a, signed_in):
        membership = Membership.objects.get(user=drafter_a)
        response = signed_in(manager_b).post(member_url(campaign_b, membership, "remove"))
        assert response.status_code == 404
        assert Membership.objects.filter(pk=membership.pk).exists()
        assert refusals(campaign_b.pk) == 1

    def test_a_manager_who_leaves_is_signed_out(self, campaign_a, manager_a, make_member, signed_in):
        make_member(campaign_a, "team")
        client = signed_in(manager_a)
        tracked(client, manager_a)
        own = Membership.objects.get(user=manager_a)
        response = client.post(member_url(campaign_a, own, "remove"))
        assert response["Location"] == reverse("staff:home")
        assert not Membership.objects.filter(pk=own.pk).exists()
        assert client.get(reverse("staff:home"))["Location"].startswith(reverse("account_login"))

    def test_the_only_team_manager_cannot_remove_themselves(self, campaign_a, manager_a, signed_in):
        own = Membership.objects.get(user=manager_a)
        client = signed_in(manager_a)
        response = client.post(member_url(campaign_a, own, "remove"), follow=True)
        assert "only member who manages this team" in response.content.decode()
        assert Membership.objects.filter(pk=own.pk).exists()


class TestRevokeInvitation:
    def test_a_team_manager_withdraws_an_invitation(self, campaign_a, manager_a, signed_in):
        invitation, _ = staff.invitation_create(
            campaign=campaign_a, email="carol@example.org", permissions=["draft"], actor=manager_a
        )
        response = signed_in(manager_a).post(reverse("staff:invitation_revoke", args=[campaign_a.pk, invitation.pk]))
        assert response.status_code == 302
        invitation.refresh_from_db()
        assert invitation.revoked_at is not None

    def test_an_invitation_of_a_under_bs_url_is_refused(self, campaign_a, campaign_b, manager_a, manager_b, signed_in):
        invitation, _ = staff.invitation_create(
            campaign=campaign_a, email="carol@example.org", permissions=["draft"], actor=manager_a
        )
        response = signed_in(manager_b).post(reverse("staff:invitation_revoke", args=[campaign_b.pk, invitation.pk]))
        assert response.status_code == 404
        invitation.refresh_from_db()
        assert invitation.revoked_at is None
        assert refusals(campaign_b.pk) == 1
