"""Unsubscribe: the link in every email, and the RFC 8058 one-click POST at the same URL.

GET shows a page with an Unsubscribe button and never changes anything, because
mail scanners follow links. POST unsubscribes from everything: the person is
inactive before the response is sent, and erasure follows in a task.

The POST is what mail providers send when someone presses "Unsubscribe" in their
mail client (RFC 8058): `List-Unsubscribe=One-Click`, urlencoded or multipart, with
no cookies. So it is exempt from CSRF (the token in the URL is the authority, and a
forged cross-site POST would need that secret), sets no cookie, never redirects,
and answers 200 every time, changing state at most once.

Policy for a wrong, tampered, revoked or erased-person token: **200 with the same
neutral page**. A 4xx would make some providers retry and would tell a prober that
a token was wrong; the neutral page says only that the link's address, if it was
subscribed, is not any more. Nothing is written.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from subscriptions.models import ConsentEvent, Subscriber
from subscriptions.services.withdrawal import WithdrawalReason, subscriber_withdraw
from subscriptions.tokens import LinkPurpose, TokenInvalid, make_link_token, subscriber_for_link_token

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
_RECEIVING = (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE)


def _subscriber(token: str) -> Subscriber | None:
    try:
        return subscriber_for_link_token(purpose=LinkPurpose.UNSUBSCRIBE, token=token)
    except TokenInvalid:
        return None


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        return _unsubscribe_now(request, token)
    subscriber = _subscriber(token)
    if subscriber is None:
        return render(request, "subscriptions/unsubscribe_unknown.html", status=404)
    campaign = subscriber.campaign
    if subscriber.status not in _RECEIVING:
        return render(request, "subscriptions/unsubscribe_done.html", {"campaign": campaign})
    context = {
        "campaign": campaign,
        "manage_token": make_link_token(purpose=LinkPurpose.MANAGE, subscriber=subscriber),
    }
    return render(request, "subscriptions/unsubscribe.html", context)


def _unsubscribe_now(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = _subscriber(token)
    if subscriber is None:
        return render(request, "subscriptions/unsubscribe_unknown.html", status=200)
    one_click = request.POST.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    subscriber_withdraw(
        subscriber_id=subscriber.pk,
        reason=WithdrawalReason.ONE_CLICK if one_click else WithdrawalReason.UNSUBSCRIBE_PAGE,
        source=ConsentEvent.Source.EMAIL,
    )
    return render(request, "subscriptions/unsubscribe_done.html", {"campaign": subscriber.campaign})
