"""The JSON API for server-to-server sign-ups, authenticated by one of the campaign's
API keys: POST /api/v1/campaigns/<slug>/signups. What it takes and answers: docs/api.md.
"""

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from subscriptions import abuse
from subscriptions.forms import SignupFormFields
from subscriptions.models import Campaign, ConsentEvent
from subscriptions.services.api_keys import api_key_find
from subscriptions.services.signup.request import signup_request

_TOP_LEVEL_KEYS = {"email", "first_name", "topics", "form", "attributes", "consent"}
MAX_BODY_BYTES = 16 * 1024


def _error(status: int, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = fields
    return JsonResponse(body, status=status)


def _form_data(payload: dict[str, Any]) -> dict[str, Any]:
    attributes = payload.get("attributes") or {}
    data = {key: value for key, value in attributes.items() if key not in {"email", "first_name", "topics", "consent"}}
    data.update({"email": payload.get("email", ""), "first_name": payload.get("first_name", "")})
    if "topics" in payload:
        data["topics"] = payload["topics"]
    if payload.get("consent") is True:
        data["consent"] = "on"
    return data


def _parse(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    if request.content_type != "application/json":
        return _error(415, "Send a JSON body with Content-Type: application/json.")
    if len(request.body) > MAX_BODY_BYTES:
        return _error(413, "The request body is too large.")
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "The request body is not valid JSON.")
    if not isinstance(payload, dict) or not isinstance(payload.get("attributes", {}), dict):
        return _error(400, "The body must be a JSON object; attributes must be an object.")
    unknown = sorted(set(payload) - _TOP_LEVEL_KEYS)
    if unknown:
        return _error(400, f"Unknown keys: {', '.join(unknown)}.")
    return payload


@csrf_exempt  # authenticated by API key, not by a browser session
@require_POST
def signup_create(request: HttpRequest, campaign_slug: str) -> JsonResponse:
    campaign = Campaign.objects.filter(slug=campaign_slug).first()
    secret = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    key = api_key_find(campaign=campaign, secret=secret) if campaign is not None and secret else None
    if campaign is None or key is None:
        return _error(401, "Missing or wrong API key for this campaign.")
    if not campaign.is_active:
        return _error(410, "This campaign has ended and takes no sign-ups.")
    payload = _parse(request)
    if isinstance(payload, JsonResponse):
        return payload
    forms = campaign.forms.filter(is_current=True)
    signup_form = forms.filter(slug=payload["form"]).first() if payload.get("form") else forms.order_by("slug").first()
    if signup_form is None:
        return _error(400, "Unknown form.", {"form": ["Use the slug of one of the campaign's forms."]})
    form = SignupFormFields(_form_data(payload), signup_form=signup_form)
    if not form.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        return _error(400, "The sign-up is not valid.", fields)
    try:
        abuse.check_limits(key=f"api-key:{key.pk}", limits=(abuse.Limit("api-minute", key.rate_limit_per_minute, 60),))
        signup_request(
            form=signup_form,
            email=form.cleaned_data["email"],
            first_name=form.cleaned_data.get("first_name", ""),
            topics=form.chosen_topics(),
            attributes=form.attributes(),
            source=ConsentEvent.Source.API,
        )
    except abuse.RateLimited:
        return _error(429, "Too many requests; try again later.")
    return JsonResponse({"status": "accepted"}, status=202)
