"""The page an invitation link opens: no sign-in needed, the link is the credential.

A link that cannot be used says so in one sentence, whatever the reason, so the page
tells someone holding a guessed or old link nothing about the team.
"""

from allauth.account.utils import perform_login
from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from subscriptions import abuse
from subscriptions.models import Invitation
from subscriptions.services import staff
from subscriptions.views.signup import rate_limited

# Per client address: enough for someone mistyping a password, too few to try many.
ACCEPT_LIMITS = (abuse.Limit("invitation-minute", 10, 60), abuse.Limit("invitation-hour", 40, 3600))


class AcceptForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150)
    last_name = forms.CharField(label="Last name", max_length=150)
    password1 = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput,
        help_text="At least 12 characters. Not a common password, and not like your name or email address.",
    )
    password2 = forms.CharField(label="Type the password again", strip=False, widget=forms.PasswordInput)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords are not the same.")
        return data


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        try:
            abuse.check_limits(key=f"invitation:{abuse.client_ip(request)}", limits=ACCEPT_LIMITS)
        except abuse.RateLimited:
            return rate_limited(request)
    try:
        invitation = staff.invitation_find(token=token)
    except staff.InvitationUnusable as unusable:
        return render(request, "staff/invitation_unusable.html", status=410 if unusable.gone else 404)
    existing = staff.invitation_account(invitation)
    if existing is not None:
        return _join_as_existing(request, token, invitation, existing)
    form = AcceptForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user = staff.invitation_accept(
                token=token, password=form.cleaned_data["password1"], first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
            )  # fmt: skip
        except staff.InvitationUnusable:
            return render(request, "staff/invitation_unusable.html", status=410)
        except ValidationError as error:
            form.add_error("password1", error)
        else:
            # allauth's own sign-in, so the session is recorded (and can be ended) like any other.
            return perform_login(request, user, redirect_url=reverse("staff:home"))
    context = {"invitation": invitation, "form": form}
    return render(request, "staff/invitation_accept.html", context, status=400 if form.errors else 200)


def _join_as_existing(request: HttpRequest, token: str, invitation: Invitation, existing: User) -> HttpResponse:
    """Someone with an account already: they join by pressing a button while signed in as it."""
    signed_in_as_them = request.user.is_authenticated and request.user.pk == existing.pk
    if request.method == "POST" and signed_in_as_them:
        try:
            staff.invitation_accept(token=token, password="", first_name="", last_name="", signed_in=request.user)
        except staff.InvitationUnusable:
            return render(request, "staff/invitation_unusable.html", status=410)
        messages.success(request, f"You have joined the team of {invitation.campaign.name}.")
        return redirect("staff:home")
    context = {"invitation": invitation, "signed_in_as_them": signed_in_as_them}
    return render(request, "staff/invitation_join.html", context, status=200)
