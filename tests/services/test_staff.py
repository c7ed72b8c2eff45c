"""Campaign teams: invitations, permission changes and removals."""

import datetime
import hashlib

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.utils import timezone

from subscriptions.models import AuditEvent, Invitation, Membership, Permission
from subscriptions.services import staff
from tests.support.factories import CampaignFactory

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a long and unusual passphrase 7"


@pytest.fixture
def campaign():
    return CampaignFactory(name="Police recruitment")


@pytest.fixture
def manager(campaign):
    user = User.objects.create_user("manager@example.org", "manager@example.org", is_staff=True)
    Membership.objects.create(user=user, campaign=campaign, permissions=[Permission.TEAM, Permission.DASHBOARD])
    return user


def invite(campaign, manager, email="new@example.org", permissions=("draft", "dashboard")):
    return staff.invitation_create(campaign=campaign, email=email, permissions=list(permissions), actor=manager)


def accept(token, **fields):
    values = {"password": PASSWORD, "first_name": "Nia", "last_name": "Okafor"}
    return staff.invitation_accept(token=token, **(values | fields))


def refusal(callable_, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        callable_(**kwargs)
    return " ".join(caught.value.messages)


class TestInvitationCreate:
    def test_it_stores_only_a_hash_of_the_token(self, campaign, manager):
        invitation, token = invite(campaign, manager)
        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert not Invitation.objects.filter(token_hash=token).exists()

    def test_it_expires_after_the_configured_hours(self, campaign, manager, settings):
        settings.STAFF_INVITATION_EXPIRY_HOURS = 5
        invitation, _ = invite(campaign, manager)
        assert invitation.expires_at - invitation.created_at == pytest.approx(
            datetime.timedelta(hours=5), abs=datetime.timedelta(seconds=5)
        )

    def test_it_mails_the_link_once_committed(self, campaign, manager, mailoutbox, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _, token = invite(campaign, manager, email="New@Example.org")
        [message] = mailoutbox
        assert message.to == ["new@example.org"]
        assert "Police recruitment" in message.subject
        assert f"{settings.SITE_URL}/{settings.STAFF_PATH}/invitations/{token}/" in message.body

    def test_it_keeps_only_known_permissions(self, campaign, manager):
        invitation, _ = invite(campaign, manager, permissions=["send", "superpowers", "team"])
        assert invitation.permissions == ["send", "team"]

    def test_it_refuses_an_invitation_without_permissions(self, campaign, manager):
        assert "at least one permission" in refusal(invite, campaign=campaign, manager=manager, permissions=["x"])

    def test_it_refuses_a_bad_address(self, campaign, manager):
        with pytest.raises(ValidationError):
            invite(campaign, manager, email="not an address")

    def test_it_refuses_someone_already_in_the_team(self, campaign, manager):
        assert "already a member" in refusal(invite, campaign=campaign, manager=manager, email="MANAGER@example.org")

    def test_it_is_audited_without_the_address(self, campaign, manager):
        invitation, _ = invite(campaign, manager)
        event = AuditEvent.objects.get(action="invitation_created")
        assert (event.campaign_id, event.target_id, event.actor_id) == (campaign.pk, invitation.pk, manager.pk)
        assert "new@example.org" not in str(event.details)


class TestInvitationAccept:
    def test_it_creates_a_staff_user_named_by_the_address_with_the_permissions(self, campaign, manager):
        _, token = invite(campaign, manager)
        user = accept(token)
        assert (user.username, user.email, user.is_staff, user.is_superuser) == (
            "new@example.org",
            "new@example.org",
            True,
            False,
        )
        assert user.check_password(PASSWORD)
        assert Membership.objects.get(user=user, campaign=campaign).permissions == ["dashboard", "draft"]
        assert AuditEvent.objects.filter(action="invitation_accepted", actor=user, campaign_id=campaign.pk).exists()

    def test_it_works_only_once(self, campaign, manager):
        _, token = invite(campaign, manager)
        accept(token)
        with pytest.raises(staff.InvitationUnusable) as caught:
            accept(token, password="another long passphrase 8")
        assert caught.value.gone
        assert "already been used" in " ".join(caught.value.messages)

    def test_it_refuses_an_expired_link(self, campaign, manager):
        _, token = invite(campaign, manager)
        with time_machine.travel(timezone.now() + datetime.timedelta(hours=73)):
            assert "expired" in refusal(accept, token=token)
        assert not User.objects.filter(email="new@example.org").exists()

    def test_it_refuses_a_revoked_link(self, campaign, manager):
        invitation, token = invite(campaign, manager)
        staff.invitation_revoke(invitation_id=invitation.pk, campaign_id=campaign.pk, actor=manager)
        assert "withdrawn" in refusal(accept, token=token)

    def test_it_refuses_an_unknown_link(self):
        with pytest.raises(staff.InvitationUnusable) as caught:
            accept("made-up")
        assert not caught.value.gone

    def test_it_refuses_a_weak_password_and_leaves_the_link_usable(self, campaign, manager):
        _, token = invite(campaign, manager)
        with pytest.raises(ValidationError):
            accept(token, password="1")
        assert not User.objects.filter(email="new@example.org").exists()
        assert accept(token).pk

    def test_it_asks_an_existing_account_to_sign_in_first(self, campaign, manager):
        elsewhere = User.objects.create_user("nia", "new@example.org")
        _, token = invite(campaign, manager)
        assert "sign in to it" in refusal(accept, token=token)
        assert "sign in to it" in refusal(accept, token=token, signed_in=manager)
        assert accept(token, password="", signed_in=elsewhere) == elsewhere
        assert Membership.objects.filter(user=elsewhere, campaign=campaign).exists()

    def test_it_adds_to_the_permissions_of_a_membership_made_meanwhile(self, campaign, manager):
        other = CampaignFactory()
        _, token = invite(other, manager, email="manager@example.org", permissions=["send"])
        Membership.objects.create(user=manager, campaign=other, permissions=["dashboard"])
        accept(token, signed_in=manager)
        assert Membership.objects.get(user=manager, campaign=other).permissions == ["dashboard", "send"]
        assert Membership.objects.get(user=manager, campaign=campaign).permissions == ["team", "dashboard"]


class TestInvitationRevoke:
    def test_it_refuses_an_invitation_of_another_campaign(self, campaign, manager):
        invitation, _ = invite(CampaignFactory(), manager)
        assert "no such invitation" in refusal(
            staff.invitation_revoke, invitation_id=invitation.pk, campaign_id=campaign.pk, actor=manager
        )
        invitation.refresh_from_db()
        assert invitation.revoked_at is None

    def test_it_is_audited(self, campaign, manager):
        invitation, _ = invite(campaign, manager)
        staff.invitation_revoke(invitation_id=invitation.pk, campaign_id=campaign.pk, actor=manager)
        assert AuditEvent.objects.filter(action="invitation_revoked", target_id=invitation.pk).exists()


@pytest.fixture
def member(campaign):
    user = User.objects.create_user("drafter@example.org", "drafter@example.org", is_staff=True)
    return Membership.objects.create(user=user, campaign=campaign, permissions=[Permission.DRAFT])


class TestMemberPermissionsChange:
    def test_it_sets_the_known_permissions_and_audits_before_and_after(self, campaign, manager, member):
        staff.member_permissions_change(
            membership_id=member.pk, campaign_id=campaign.pk, permissions=["send", "bogus", "draft"], actor=manager
        )
        member.refresh_from_db()
        assert member.permissions == ["draft", "send"]
        event = AuditEvent.objects.get(action="member_permissions_changed")
        assert (event.details["before"], event.details["after"]) == (["draft"], ["draft", "send"])

    def test_it_refuses_a_member_of_another_campaign(self, campaign, manager, member):
        with pytest.raises(ValidationError):
            staff.member_permissions_change(
                membership_id=member.pk, campaign_id=CampaignFactory().pk, permissions=["team"], actor=manager
            )
        member.refresh_from_db()
        assert member.permissions == ["draft"]

    def test_the_only_team_manager_cannot_give_up_managing_the_team(self, campaign, manager):
        own = Membership.objects.get(user=manager)
        message = refusal(
            staff.member_permissions_change,
            membership_id=own.pk,
            campaign_id=campaign.pk,
            permissions=["dashboard"],
            actor=manager,
        )
        assert "only member who manages this team" in message
        own.refresh_from_db()
        assert "team" in own.permissions

    def test_a_manager_may_give_it_up_once_another_member_has_it(self, campaign, manager, member):
        staff.member_permissions_change(
            membership_id=member.pk, campaign_id=campaign.pk, permissions=["team"], actor=manager
        )
        own = Membership.objects.get(user=manager)
        staff.member_permissions_change(
            membership_id=own.pk, campaign_id=campaign.pk, permissions=["draft"], actor=manager
        )
        own.refresh_from_db()
        assert own.permissions == ["draft"]


def signed_in_session(user) -> SessionStore:
    """A session as allauth leaves one after a sign-in: the session and its UserSession row."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    UserSession.objects.create(user=user, session_key=session.session_key, ip="192.0.2.1", user_agent="test")
    return session


class TestMemberRemove:
    def test_it_removes_the_membership_and_ends_every_session_at_once(self, campaign, manager, member):
        sessions = [signed_in_session(member.user) for _ in range(2)]
        kept = signed_in_session(manager)
        ended = staff.member_remove(membership_id=member.pk, campaign_id=campaign.pk, actor=manager)
        assert ended == 2
        assert not Membership.objects.filter(pk=member.pk).exists()
        assert not any(SessionStore().exists(session.session_key) for session in sessions)
        assert SessionStore().exists(kept.session_key)
        event = AuditEvent.objects.get(action="member_removed")
        assert (event.target_id, event.details["sessions_ended"]) == (member.pk, 2)

    def test_it_refuses_a_member_of_another_campaign(self, campaign, manager, member):
        with pytest.raises(ValidationError):
            staff.member_remove(membership_id=member.pk, campaign_id=CampaignFactory().pk, actor=manager)
        assert Membership.objects.filter(pk=member.pk).exists()

    def test_the_only_team_manager_cannot_be_removed(self, campaign, manager):
        own = Membership.objects.get(user=manager)
        message = refusal(staff.member_remove, membership_id=own.pk, campaign_id=campaign.pk, actor=manager)
        assert "only member who manages this team" in message
        assert Membership.objects.filter(pk=own.pk).exists()
