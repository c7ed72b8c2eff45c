"""A campaign's team: its members and their permissions, and the invitations still
open. Every change needs a recent sign-in (staff_auth), as it hands out access."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from subscriptions import permissions
from subscriptions.models import Campaign, Invitation, Membership, Permission
from subscriptions.services import staff
from subscriptions.views.staff.scope import campaign_for, object_in, reauthentication


class PermissionsForm(forms.Form):
    permissions = forms.MultipleChoiceField(
        label="Permissions",
        choices=Permission.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one permission."},
    )


class InviteForm(PermissionsForm):
    email = forms.EmailField(label="Email address", max_length=254)
    field_order = ["email", "permissions"]


def _team_url(campaign: Campaign) -> str:
    return reverse("staff:team", args=[campaign.pk])


def _after_change(request: HttpRequest, campaign: Campaign) -> str:
    # A manager who just gave up managing this team (or left it) can no longer see its page.
    if permissions.has_permission(request.user, campaign.pk, Permission.TEAM):
        return _team_url(campaign)
    return reverse("staff:home")


def _render_team(request: HttpRequest, campaign: Campaign, form: InviteForm, status: int = 200) -> HttpResponse:
    members = campaign.memberships.select_related("user").order_by("user__username")
    pending = campaign.invitations.filter(accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())
    context = {
        "campaign": campaign, "members": members, "invitations": pending, "form": form, "Permission": Permission,
        "invitation_hours": f"{settings.STAFF_INVITATION_EXPIRY_HOURS} hours",
    }  # fmt: skip
    return render(request, "staff/team.html", context, status=status)


@login_required
@require_GET
def team(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    return _render_team(request, campaign, InviteForm())


@login_required
@require_POST
def invite(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    if again := reauthentication(request, _team_url(campaign)):
        return again
    form = InviteForm(request.POST)
    if form.is_valid():
        email, granted = form.cleaned_data["email"], form.cleaned_data["permissions"]
        try:
            staff.invitation_create(campaign=campaign, email=email, permissions=granted, actor=request.user)
        except ValidationError as error:
            form.add_error("email", error)
        else:
            messages.success(request, f"We have sent an invitation to {email.lower()}.")
            return redirect(_team_url(campaign))
    return _render_team(request, campaign, form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def member(request: HttpRequest, campaign_id: int, membership_id: int) -> HttpResponse:
    """Change what one member may do."""
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    membership = object_in(
        request, Membership.objects.select_related("user"), membership_id, campaign=campaign, what="membership"
    )
    form = PermissionsForm(request.POST or None, initial={"permissions": membership.permissions})
    if request.method == "POST":
        if again := reauthentication(request, request.path):
            return again
        if form.is_valid():
            try:
                staff.member_permissions_change(
                    membership_id=membership.pk, campaign_id=campaign.pk,
                    permissions=form.cleaned_data["permissions"], actor=request.user,
                )  # fmt: skip
            except ValidationError as error:
                form.add_error("permissions", error)
            else:
                messages.success(request, f"{membership.user.get_username()}'s permissions have been changed.")
                return redirect(_after_change(request, campaign))
    context = {"campaign": campaign, "membership": membership, "form": form}
    return render(request, "staff/team_member.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def member_remove(request: HttpRequest, campaign_id: int, membership_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    membership = object_in(
        request, Membership.objects.select_related("user"), membership_id, campaign=campaign, what="membership"
    )
    if again := reauthentication(request, reverse("staff:team_member", args=[campaign.pk, membership.pk])):
        return again
    try:
        staff.member_remove(membership_id=membership.pk, campaign_id=campaign.pk, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("staff:team_member", campaign.pk, membership.pk)
    if membership.user_id == request.user.pk:
        # Their own session was just ended with the others: finish signing them out here.
        logout(request)
        return redirect("staff:home")
    messages.success(request, f"{membership.user.get_username()} has been removed from the team and signed out.")
    return redirect(_after_change(request, campaign))


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, campaign_id: int, invitation_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    invitation = object_in(request, Invitation.objects.all(), invitation_id, campaign=campaign, what="invitation")
    if again := reauthentication(request, _team_url(campaign)):
        return again
    try:
        staff.invitation_revoke(invitation_id=invitation.pk, campaign_id=campaign.pk, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The invitation to {invitation.email} has been withdrawn.")
    return redirect(_team_url(campaign))
