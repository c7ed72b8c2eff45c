"""The preference centre behind each person's manage link, and the lost-link page.

A manage link that does not verify, or whose person is gone or no longer active,
shows one generic page (404), so nobody learns whether a person exists. Pages that
carry the token are never cached.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from subscriptions import abuse, selectors
from subscriptions.mail.transactional import manage_url
from subscriptions.models import Subscriber
from subscriptions.preference_forms import EmailForm, PreferencesForm
from subscriptions.services import data_export, preferences
from subscriptions.tokens import (
    ConfirmPurpose,
    LinkPurpose,
    TokenExpired,
    TokenInvalid,
    make_link_token,
    read_confirm_token,
    subscriber_for_link_token,
)
from subscriptions.views.signup import rate_limited


def _active_subscriber(token: str) -> Subscriber | None:
    try:
        subscriber = subscriber_for_link_token(purpose=LinkPurpose.MANAGE, token=token)
    except TokenInvalid:
        return None
    return subscriber if subscriber.is_active else None


def link_invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/link_invalid.html", status=404)


def _posted(request: HttpRequest) -> QueryDict | None:
    return request.POST if request.method == "POST" else None


@never_cache
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _active_subscriber(token)
    if subscriber is None:
        return link_invalid(request)
    campaign = subscriber.campaign
    form = PreferencesForm(
        _posted(request),
        subscriber=subscriber,
        topics=preferences.topics_offered(campaign=campaign),
        open_ids=preferences.topic_ids_open(subscriber=subscriber),
    )
    if request.method == "POST" and form.is_valid():
        change = preferences.preferences_update(
            subscriber_id=subscriber.pk,
            topic_ids=form.chosen_topic_ids(),
            first_name=form.cleaned_data["first_name"],
            attributes=form.attributes(),
        )
        if change is None:
            return link_invalid(request)
        if change.withdrawn:
            return render(request, "subscriptions/manage/unsubscribed.html", {"campaign": campaign})
        return redirect(f"{reverse('manage', args=[token])}?saved=1")
    context = {
        "campaign": campaign,
        "privacy_notice": selectors.privacy_notice_current(campaign=campaign),
        "subscriber": subscriber,
        "form": form,
        "token": token,
        "saved": request.GET.get("saved") == "1" and not form.errors,
        "unsubscribe_token": make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=subscriber),
    }
    return render(request, "subscriptions/manage/preferences.html", context, status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def email_change(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _active_subscriber(token)
    if subscriber is None:
        return link_invalid(request)
    form = EmailForm(_posted(request))
    context = {"campaign": subscriber.campaign, "subscriber": subscriber, "form": form, "token": token}
    if request.method == "POST" and form.is_valid():
        try:
            preferences.email_change_request(
                subscriber_id=subscriber.pk, new_email=form.cleaned_data["email"], client_ip=abuse.client_ip(request)
            )
        except abuse.RateLimited:
            return rate_limited(request)
        return render(request, "subscriptions/manage/email_check.html", context)
    return render(request, "subscriptions/manage/email_change.html", context, status=400 if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET only shows a button, because mail scanners follow links; the POST switches."""
    try:
        claim = read_confirm_token(purpose=ConfirmPurpose.EMAIL_CHANGE, token=token)
    except TokenExpired:
        return render(request, "subscriptions/manage/email_expired.html", status=410)
    except TokenInvalid:
        return link_invalid(request)
    if request.method == "GET":
        return render(request, "subscriptions/manage/email_confirm.html")
    outcome = preferences.email_change_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
    subscriber = Subscriber.objects.select_related("campaign").filter(pk=claim.subscriber_id).first()
    if outcome == preferences.EmailChangeOutcome.GONE or subscriber is None:
        return link_invalid(request)
    context = {"campaign": subscriber.campaign, "outcome": str(outcome)}
    if outcome == preferences.EmailChangeOutcome.TAKEN:
        return render(request, "subscriptions/manage/email_taken.html", context, status=409)
    # The manage link is the person's key: only the inbox whose change is in force may
    # have it. A replayed link (ALREADY) may come from an address since changed away.
    if outcome == preferences.EmailChangeOutcome.CHANGED and preferences.email_change_in_force(
        subscriber=subscriber, request_id=claim.event_id
    ):
        context["manage_url"] = manage_url(subscriber)
    return render(request, "subscriptions/manage/email_changed.html", context)


def _with_datetimes(value: Any) -> Any:
    """The export with its ISO timestamps as datetimes, for the page to show as people write them."""
    if isinstance(value, dict):
        return {key: _with_datetimes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_datetimes(item) for item in value]
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        return parse_datetime(value) or value
    return value


@never_cache
@require_GET
def download(request: HttpRequest, token: str) -> HttpResponse:
    """Everything held about the person: a JSON file, or with ?format=page the same as a page to read."""
    subscriber = _active_subscriber(token)
    data = data_export.subscriber_data_export(subscriber_id=subscriber.pk) if subscriber else None
    if subscriber is None or data is None:
        return link_invalid(request)
    if request.GET.get("format") == "page":
        context = {"campaign": subscriber.campaign, "data": _with_datetimes(data), "token": token}
        return render(request, "subscriptions/manage/my_data.html", context)
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{subscriber.campaign.slug}-my-data.json"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, token: str) -> HttpResponse:
    """ "Delete my data": a confirm page, then withdrawal now and erasure in a task."""
    subscriber = _active_subscriber(token)
    if subscriber is None:
        return link_invalid(request)
    context = {"campaign": subscriber.campaign, "token": token}
    if request.method == "GET":
        return render(request, "subscriptions/manage/delete.html", context)
    preferences.data_erasure_request(subscriber_id=subscriber.pk)
    return render(request, "subscriptions/manage/deleted.html", context)


@require_http_methods(["GET", "POST"])
def lost_link(request: HttpRequest, campaign_slug: str) -> HttpResponse:
    """ "Lost your link?": the same page follows whether or not the address is known."""
    campaign = selectors.campaign_get_public(slug=campaign_slug)
    form = EmailForm(_posted(request))
    context = {"campaign": campaign, "form": form}
    if request.method == "POST" and form.is_valid():
        try:
            preferences.manage_link_request(
                campaign=campaign, email=form.cleaned_data["email"], client_ip=abuse.client_ip(request)
            )
        except abuse.RateLimited as refused:
            if refused.limit == abuse.MANAGE_LINK_WINDOW:
                return _lost_link_wait(request, context)
            return rate_limited(request)
        return render(request, "subscriptions/manage/lost_link_sent.html", context)
    return render(request, "subscriptions/manage/lost_link.html", context, status=400 if form.errors else 200)


def _lost_link_wait(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """A link went to this address minutes ago (maybe asked for by someone else): the
    person is told to look in their inbox, not that their connection did wrong."""
    window = settings.MANAGE_LINK_WINDOW_SECONDS
    context = {**context, "wait_minutes": max(1, -(-window // 60))}
    response = render(request, "subscriptions/manage/lost_link_wait.html", context, status=429)
    response["Retry-After"] = str(window)
    return response
