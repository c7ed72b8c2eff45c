"""Campaign teams: inviting members, accepting an invitation, changing what a member
may do, and removing them.

An invitation link is a random token; only its SHA-256 is stored, so a copy of the
database opens no team. A campaign always keeps at least one member who manages the
team, so nobody can lock every member out of it.
"""

import hashlib
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from subscriptions.audit import Actor, actor_name, audit_record
from subscriptions.mail import transactional
from subscriptions.models import Campaign, Invitation, Membership, Permission
from subscriptions.permissions import only_known_permissions


class InvitationUnusable(ValidationError):
    """The link cannot be used. `gone` is True for a link that once worked (expired,
    revoked or used), False for one that never existed."""

    def __init__(self, message: str, *, gone: bool) -> None:
        super().__init__(message)
        self.gone = gone


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _granted(permissions: list[str] | tuple[str, ...]) -> list[str]:
    granted = only_known_permissions(permissions)
    if not granted:
        raise ValidationError("Choose at least one permission.")
    return granted


def invitation_create(
    *, campaign: Campaign, email: str, permissions: list[str], actor: Actor
) -> tuple[Invitation, str]:
    """Invite `email` into the campaign's team; returns the row and the token (its link is mailed)."""
    email = email.strip().lower()
    validate_email(email)
    granted = _granted(permissions)
    if Membership.objects.filter(campaign=campaign, user__email__iexact=email).exists():
        raise ValidationError("That person is already a member of this campaign's team.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        campaign=campaign, email=email, permissions=granted, token_hash=_hash(token), invited_by_name=actor_name(actor),
        expires_at=timezone.now() + timedelta(hours=settings.STAFF_INVITATION_EXPIRY_HOURS),
    )  # fmt: skip
    audit_record(
        actor=actor, action="invitation_created", campaign_id=campaign.pk, target_type="invitation",
        target_id=invitation.pk, permissions=granted,
    )  # fmt: skip
    # Mail once the invitation is committed (a link to a rolled-back row would not work),
    # from this process: a task would leave the token in the broker.
    transaction.on_commit(lambda: transactional.staff_invitation(invitation=invitation, token=token))
    return invitation, token


def invitation_find(*, token: str, lock: bool = False) -> Invitation:
    """The usable invitation behind `token`, or InvitationUnusable saying why not.
    With `lock` (inside a transaction) the row stays locked, so it is used only once."""
    invitations = Invitation.objects.select_related("campaign").filter(token_hash=_hash(token))
    invitation = (invitations.select_for_update(of=("self",)) if lock else invitations).first()
    if invitation is None:
        raise InvitationUnusable("This invitation link is not valid.", gone=False)
    if invitation.accepted_at is not None:
        raise InvitationUnusable("This invitation has already been used.", gone=True)
    if invitation.revoked_at is not None:
        raise InvitationUnusable("This invitation was withdrawn.", gone=True)
    if invitation.expires_at <= timezone.now():
        raise InvitationUnusable("This invitation has expired.", gone=True)
    return invitation


def invitation_accept(
    *, token: str, password: str, first_name: str, last_name: str, signed_in: User | AnonymousUser | None = None
) -> User:
    """Join the team the invitation names, once. A new address gets a staff account
    with this password; an address that already has one must be signed in as it."""
    with transaction.atomic():
        invitation = invitation_find(token=token, lock=True)
        user = _invitee(invitation, password=password, first_name=first_name, last_name=last_name, signed_in=signed_in)
        membership, _ = Membership.objects.get_or_create(user=user, campaign=invitation.campaign)
        membership.permissions = only_known_permissions([*membership.permissions, *invitation.permissions])
        membership.save(update_fields=["permissions"])
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        audit_record(
            actor=user, action="invitation_accepted", campaign_id=invitation.campaign_id, target_type="invitation",
            target_id=invitation.pk, permissions=membership.permissions,
        )  # fmt: skip
    return user


def invitation_account(invitation: Invitation) -> User | None:
    """The account the invited address already has, if any: it joins as itself."""
    return User.objects.filter(Q(email__iexact=invitation.email) | Q(username__iexact=invitation.email)).first()


def _invitee(
    invitation: Invitation, *, password: str, first_name: str, last_name: str, signed_in: User | AnonymousUser | None
) -> User:
    existing = invitation_account(invitation)
    if existing is not None:
        if signed_in is None or signed_in.pk != existing.pk:
            raise ValidationError(
                "There is already an account for this email address: sign in to it, then open the link again."
            )
        return existing
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name or not last_name:
        raise ValidationError("Enter your first name and last name.")
    user = User(username=invitation.email, email=invitation.email, first_name=first_name, last_name=last_name)
    validate_password(password, user=user)
    user.is_staff = True
    user.set_password(password)
    user.save()
    # The link came to this address, so the address is verified.
    EmailAddress.objects.create(user=user, email=invitation.email, verified=True, primary=True)
    return user


def invitation_revoke(*, invitation_id: int, campaign_id: int, actor: Actor) -> Invitation:
    """Stop an invitation of this campaign from working."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(pk=invitation_id, campaign_id=campaign_id).first()
        if invitation is None:
            raise ValidationError("There is no such invitation in this campaign.")
        if invitation.accepted_at is not None:
            raise ValidationError("This invitation has already been accepted: remove the member instead.")
        if invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor, action="invitation_revoked", campaign_id=campaign_id, target_type="invitation",
                target_id=invitation.pk,
            )  # fmt: skip
    return invitation


def _membership_locked(*, membership_id: int, campaign_id: int) -> tuple[Membership, list[Membership]]:
    """The membership and its whole team, all locked, so two managers changing each
    other at once cannot both give up the last TEAM permission."""
    team = list(
        Membership.objects.select_for_update(of=("self",)).filter(campaign_id=campaign_id).select_related("user")
    )
    membership = next((row for row in team if row.pk == membership_id), None)
    if membership is None:
        raise ValidationError("There is no such member in this campaign's team.")
    return membership, team


def _keeps_a_team_manager(membership: Membership, team: list[Membership], permissions: list[str]) -> None:
    if Permission.TEAM not in membership.permissions or Permission.TEAM in permissions:
        return
    if not any(Permission.TEAM in other.permissions for other in team if other.pk != membership.pk):
        raise ValidationError(
            f"{membership.user.get_username()} is the only member who manages this team: "
            "give another member that permission first."
        )


def member_permissions_change(
    *, membership_id: int, campaign_id: int, permissions: list[str], actor: Actor
) -> Membership:
    """Set what a member may do in this campaign."""
    granted = _granted(permissions)
    with transaction.atomic():
        membership, team = _membership_locked(membership_id=membership_id, campaign_id=campaign_id)
        _keeps_a_team_manager(membership, team, granted)
        before = membership.permissions
        if before != granted:
            membership.permissions = granted
            membership.save(update_fields=["permissions"])
            audit_record(
                actor=actor, action="member_permissions_changed", campaign_id=campaign_id, target_type="membership",
                target_id=membership.pk, member=actor_name(membership.user), before=before, after=granted,
            )  # fmt: skip
    return membership


def member_remove(*, membership_id: int, campaign_id: int, actor: Actor) -> int:
    """Take a member out of this campaign's team and end every session they have, at
    once (not at their next sign-in). Returns how many sessions were ended."""
    with transaction.atomic():
        membership, team = _membership_locked(membership_id=membership_id, campaign_id=campaign_id)
        _keeps_a_team_manager(membership, team, [])
        user = membership.user
        membership.delete()
        ended = user_sessions_end(user=user)
        audit_record(
            actor=actor, action="member_removed", campaign_id=campaign_id, target_type="membership",
            target_id=membership_id, member=actor_name(user), permissions=membership.permissions, sessions_ended=ended,
        )  # fmt: skip
    return ended


def user_sessions_end(*, user: User) -> int:
    """End every session allauth knows for `user` (each sign-in records one)."""
    sessions = list(UserSession.objects.filter(user_id=user.pk))
    for session in sessions:
        session.end()
    return len(sessions)
