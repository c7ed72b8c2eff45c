"""Public pages that only show things: the campaign list and a campaign's landing page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from subscriptions import selectors


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/home.html", {"campaigns": selectors.campaigns_public()})


def campaign_landing(request: HttpRequest, campaign_slug: str) -> HttpResponse:
    campaign = selectors.campaign_get_public(slug=campaign_slug)
    context = {
        "campaign": campaign,
        "forms": selectors.signup_forms_current(campaign=campaign),
        "privacy_notice": selectors.privacy_notice_current(campaign=campaign),
    }
    return render(request, "subscriptions/campaign_landing.html", context)
