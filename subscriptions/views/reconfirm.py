"""Reconfirmation: the "keep me subscribed" link in a reconfirmation email.

GET shows the button and changes nothing, because mail scanners follow links; the
POST records the answer. A link that does not verify, or whose person is gone,
shows the generic page, so nobody learns whether someone is on a list.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from subscriptions import selectors
from subscriptions.models import Subscriber
from subscriptions.services.reconfirmation import ReconfirmOutcome, subscriber_reconfirm
from subscriptions.tokens import LinkPurpose, TokenInvalid, make_link_token, subscriber_for_link_token


def _subscriber(token: str) -> Subscriber | None:
    try:
        return subscriber_for_link_token(purpose=LinkPurpose.RECONFIRM, token=token)
    except TokenInvalid:
        return None


@never_cache
@require_http_methods(["GET", "POST"])
def reconfirm(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _subscriber(token)
    if subscriber is None:
        return render(request, "subscriptions/link_invalid.html", status=404)
    campaign = subscriber.campaign
    if not (subscriber.is_active and campaign.is_active):
        return render(request, "subscriptions/reconfirm/gone.html", {"campaign": campaign}, status=410)
    if request.method == "GET":
        context = {
            "campaign": campaign,
            "privacy_notice": selectors.privacy_notice_current(campaign=campaign),
            "unsubscribe_token": make_link_token(purpose=LinkPurpose.UNSUBSCRIBE, subscriber=subscriber),
        }
        return render(request, "subscriptions/reconfirm/ask.html", context)
    outcome = subscriber_reconfirm(subscriber_id=subscriber.pk)
    if outcome == ReconfirmOutcome.GONE:
        return render(request, "subscriptions/reconfirm/gone.html", {"campaign": campaign}, status=410)
    return render(request, "subscriptions/reconfirm/kept.html", {"campaign": campaign})
