"""A campaign's API keys: list, create, rotate, revoke. A key's secret is on the page
that answers its creation (or rotation) and nowhere else, ever: only a hash is kept."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from subscriptions.models import ApiKey, Campaign, Permission
from subscriptions.services import api_keys
from subscriptions.views.staff.scope import campaign_for, object_in, reauthentication


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, help_text="So you can tell your keys apart, for example “Website sign-up form”."
    )
    rate_limit_per_minute = forms.IntegerField(
        label="Requests allowed per minute (optional)", required=False, min_value=1, max_value=100_000
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        default = settings.API_LIMIT_PER_KEY_PER_MINUTE
        self.fields["rate_limit_per_minute"].help_text = f"Leave empty for the usual limit of {default}."


def _keys_url(campaign: Campaign) -> str:
    return reverse("staff:api_keys", args=[campaign.pk])


def _render_keys(request: HttpRequest, campaign: Campaign, form: ApiKeyForm, status: int = 200) -> HttpResponse:
    keys = ApiKey.objects.filter(campaign=campaign).order_by("name", "-created_at")
    context = {"campaign": campaign, "keys": keys, "form": form, "now": timezone.now()}
    return render(request, "staff/api_keys.html", context, status=status)


def _render_secret(
    request: HttpRequest, campaign: Campaign, key: ApiKey, secret: str, *, rotated: bool
) -> HttpResponse:
    context = {
        "campaign": campaign, "key": key, "secret": secret, "rotated": rotated,
        "overlap_hours": settings.API_KEY_ROTATION_OVERLAP_HOURS,
    }  # fmt: skip
    return render(request, "staff/api_key_secret.html", context)


@login_required
@require_GET
def api_key_list(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    return _render_keys(request, campaign, ApiKeyForm())


@never_cache
@login_required
@require_POST
def api_key_create(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    if again := reauthentication(request, _keys_url(campaign)):
        return again
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, secret = api_keys.api_key_create(
                campaign=campaign, name=form.cleaned_data["name"], actor=request.user,
                rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            )  # fmt: skip
        except ValidationError as error:
            form.add_error("name", error)
        else:
            return _render_secret(request, campaign, key, secret, rotated=False)
    return _render_keys(request, campaign, form, status=400)


@never_cache
@login_required
@require_POST
def api_key_rotate(request: HttpRequest, campaign_id: int, key_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    key = object_in(request, ApiKey.objects.all(), key_id, campaign=campaign, what="api_key")
    if again := reauthentication(request, _keys_url(campaign)):
        return again
    try:
        new, secret = api_keys.api_key_rotate_one(campaign=campaign, key_id=key.pk, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(_keys_url(campaign))
    return _render_secret(request, campaign, new, secret, rotated=True)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, campaign_id: int, key_id: int) -> HttpResponse:
    campaign = campaign_for(request, campaign_id, Permission.TEAM)
    key = object_in(request, ApiKey.objects.all(), key_id, campaign=campaign, what="api_key")
    # Revoking stops the campaign's own systems signing people up: a recent sign-in first.
    if again := reauthentication(request, _keys_url(campaign)):
        return again
    api_keys.api_key_revoke(campaign_id=campaign.pk, key_id=key.pk, actor=request.user)
    messages.success(request, f"The key “{key.name}” ({key.prefix}…) no longer works.")
    return redirect(_keys_url(campaign))
