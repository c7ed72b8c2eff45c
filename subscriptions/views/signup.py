"""Sign-up: our own page, the cross-site embedded form, and the confirmation link.

Every accepted submission ends on the same "check your email" page whatever the
address's state, so the page never tells anyone whether an address is subscribed.
"""

from functools import lru_cache

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from subscriptions import abuse, selectors
from subscriptions.forms import ConfirmForm, SignupFormFields, signup_fields
from subscriptions.middleware import posted_from_our_pages, refuse_cross_site
from subscriptions.models import Campaign, ConsentEvent
from subscriptions.selectors import SignupPage
from subscriptions.services.signup.confirm import signup_confirm
from subscriptions.services.signup.request import signup_request
from subscriptions.tokens import ConfirmPurpose, TokenExpired, TokenInvalid, read_confirm_token


def rate_limited(request: HttpRequest) -> HttpResponse:
    response = render(request, "subscriptions/rate_limited.html", status=429)
    response["Retry-After"] = "300"
    return response


def campaign_closed(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    return render(request, "subscriptions/campaign_closed.html", {"campaign": campaign}, status=410)


def _render_form(request: HttpRequest, page: SignupPage, form: SignupFormFields, status: int = 200) -> HttpResponse:
    context = {
        "campaign": page.form.campaign,
        "signup_form": page.form,
        "form": form,
        "privacy_notice": page.privacy_notice,
        "stamp": abuse.form_stamp(),
    }
    return render(request, "subscriptions/signup.html", context, status=status)


def _form_fields(page: SignupPage, data: QueryDict | None = None) -> SignupFormFields:
    fields = page.memo.get("fields")
    if fields is None:  # built once per page version, shared by its requests
        fields = page.memo["fields"] = signup_fields(page.form, page.topics)
    return SignupFormFields(data, signup_form=page.form, offered_topics=page.topics, fields=fields)


def _accept(request: HttpRequest, page: SignupPage, *, source: ConsentEvent.Source) -> HttpResponse | None:
    """Validate and record a submission. Returns a response for the error cases, or
    None when the caller should show its "check your email" outcome."""
    form = _form_fields(page, request.POST)
    if not form.is_valid():
        return _render_form(request, page, form, status=400)
    stamp = request.POST.get("stamp", "") if source == ConsentEvent.Source.PAGE else None
    if abuse.looks_automated(honeypot=form.cleaned_data["website"], stamp=stamp):
        return None  # a bot sees success and learns nothing
    try:
        signup_request(
            form=page.form,
            email=form.cleaned_data["email"],
            first_name=form.cleaned_data.get("first_name", ""),
            topics=form.chosen_topics(),
            attributes=form.attributes(),
            source=source,
            client_ip=abuse.client_ip(request),
            privacy_notice=page.privacy_notice,
        )
    except abuse.RateLimited:
        return rate_limited(request)
    return None


# A POST may use the page as this process last checked it, up to this long ago (see
# selectors.signup_page_get): a sign-up then never waits on PostgreSQL at all.
POST_REUSES_PAGE_SECONDS = 1.0


def _page(request: HttpRequest, campaign_slug: str, form_slug: str) -> SignupPage:
    reuse = POST_REUSES_PAGE_SECONDS if request.method == "POST" else 0.0
    return selectors.signup_page_get(campaign_slug=campaign_slug, form_slug=form_slug, reuse_within=reuse)


# No CSRF token (why: docs/adr/0005-no-csrf-token-on-signup.md). A POST the browser says
# came from another site is still refused: such a form belongs on signup_embed. Our
# page's form carries its stamp, which a POST here must have.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def signup_page(request: HttpRequest, campaign_slug: str, form_slug: str) -> HttpResponse:
    if request.method == "POST" and not posted_from_our_pages(request):
        return refuse_cross_site(request)
    page = _page(request, campaign_slug, form_slug)
    if not page.form.campaign.is_active:
        return campaign_closed(request, page.form.campaign)
    if request.method == "GET":
        return _render_form(request, page, _form_fields(page))
    response = _accept(request, page, source=ConsentEvent.Source.PAGE)
    return response or HttpResponseRedirect(_check_email_path(campaign_slug, get_script_prefix(), get_urlconf()))


@lru_cache(maxsize=1024)
def _check_email_path(campaign_slug: str, script_prefix: str, urlconf: str | None) -> str:
    """A campaign's "check your email" path, reversed once per process (every sign-up ends there)."""
    return reverse("signup-check-email", args=[campaign_slug], urlconf=urlconf)


@csrf_exempt  # posted from the campaign's own site, which cannot hold our CSRF token
@require_POST
def signup_embed(request: HttpRequest, campaign_slug: str, form_slug: str) -> HttpResponse:
    page = _page(request, campaign_slug, form_slug)
    if not page.form.campaign.is_active:
        return campaign_closed(request, page.form.campaign)
    response = _accept(request, page, source=ConsentEvent.Source.EMBED)
    if response is not None:
        return response
    return HttpResponseRedirect(_embed_next(request, page.form.campaign), status=303)


def _embed_next(request: HttpRequest, campaign: Campaign) -> str:
    """The campaign's own thank-you page when it is on the allow-list, else ours."""
    target = request.POST.get("next", "")
    allowed = set(campaign.redirect_allowlist)
    if target and allowed and url_has_allowed_host_and_scheme(target, allowed_hosts=allowed, require_https=True):
        return target
    return _check_email_path(campaign.slug, get_script_prefix(), get_urlconf())


def check_email(request: HttpRequest, campaign_slug: str) -> HttpResponse:
    campaign = selectors.campaign_get_public(slug=campaign_slug)
    return render(request, "subscriptions/check_email.html", {"campaign": campaign})


@never_cache  # the path carries the token, like every other link page
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET only shows a button, because mail scanners follow links; the POST confirms."""
    try:
        claim = read_confirm_token(purpose=ConfirmPurpose.SIGNUP, token=token)
    except TokenExpired as expired:
        campaign = None
        if expired.campaign_id is not None:
            campaign = Campaign.objects.filter(pk=expired.campaign_id, status=Campaign.Status.ACTIVE).first()
        return render(request, "subscriptions/confirm_expired.html", {"campaign": campaign}, status=410)
    except TokenInvalid:
        return render(request, "subscriptions/link_invalid.html", status=404)
    if request.method == "GET":
        campaign = Campaign.objects.filter(pk=claim.campaign_id).first()
        return render(request, "subscriptions/confirm.html", {"form": ConfirmForm(), "campaign": campaign})
    subscriber = signup_confirm(subscriber_id=claim.subscriber_id, event_id=claim.event_id)
    if subscriber is None:
        return render(request, "subscriptions/link_invalid.html", status=404)
    return render(request, "subscriptions/confirmed.html", {"campaign": subscriber.campaign})
