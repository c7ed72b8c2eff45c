"""django-anymail's webhook URLs: the configured ESP's only, and none until a secret is set.

Every anymail webhook answers 403 while ANYMAIL_WEBHOOK_SECRET is unset, and only the
endpoints of the ESPs in settings.MAILERS answer (every other one is a 404). On top of
anymail's own checks, Mailgun's signed timestamp must be fresh and each token is taken
once, and Amazon SES's SNS messages are verified here (subscriptions.sns). Why:
docs/adr/0010-webhooks-trusted-only-when-verified.md.
"""

import datetime
import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, HttpResponseNotFound
from django.urls import URLPattern
from django.utils import timezone

from subscriptions.sns import SnsMessageInvalid, sns_message_verify, sns_timestamp

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]
_ANYMAIL_BACKEND = re.compile(r"^anymail\.backends\.(\w+)\.EmailBackend$")
# anymail's old name for Brevo shares its webhooks' code.
_SAME_ESP = {"sendinblue": "brevo"}


def webhook_secret_configured() -> bool:
    return bool(settings.ANYMAIL.get("WEBHOOK_SECRET") or getattr(settings, "ANYMAIL_WEBHOOK_SECRET", None))


def configured_esps() -> set[str]:
    """The anymail ESP modules settings.MAILERS sends through ("mailgun", "amazon_ses", ...)."""
    esps = set()
    for mailer in settings.MAILERS.values():
        found = _ANYMAIL_BACKEND.match(str(mailer.get("BACKEND", "")))
        if found:
            esps.add(_SAME_ESP.get(found.group(1), found.group(1)))
    return esps


def esp_of(pattern: URLPattern) -> str:
    """The ESP module an anymail URL belongs to, from its name: "amazon_ses_tracking_webhook"."""
    name = str(pattern.name).removesuffix("_webhook").removesuffix("_tracking").removesuffix("_inbound")
    return _SAME_ESP.get(name, name)


def _stale(signed_at: datetime.datetime | None) -> bool:
    if signed_at is None:
        return True
    return abs((timezone.now() - signed_at).total_seconds()) > settings.WEBHOOK_MAX_AGE_SECONDS


def _refused(esp: str, reason: str) -> HttpResponse:
    # A 400, as anymail answers a bad signature: SNS does not retry a 4xx, and the
    # providers that do stop on their own schedule (the request will not improve).
    logger.warning("Webhook for %s refused: %s", esp, reason)
    return HttpResponseBadRequest(f"Refused: {reason}.\n")


def _mailgun_signature(request: HttpRequest) -> tuple[str, str]:
    """The (timestamp, token) Mailgun signed: in the JSON body for events, in the form for inbound."""
    if request.content_type == "application/json":
        try:
            block = json.loads(request.body).get("signature", {})
        except (ValueError, AttributeError):
            return "", ""
        return str(block.get("timestamp", "")), str(block.get("token", ""))
    return request.POST.get("timestamp", ""), request.POST.get("token", "")


def _mailgun_checked(view: View) -> View:
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        timestamp, token = _mailgun_signature(request)
        try:
            signed_at = datetime.datetime.fromtimestamp(float(timestamp), tz=datetime.UTC)
        except (ValueError, OverflowError):
            signed_at = None
        if _stale(signed_at):
            return _refused("mailgun", "the signature's timestamp is outside WEBHOOK_MAX_AGE_SECONDS")
        used = f"tidings:webhook:mailgun-token:{token[:100]}"
        if token and cache.get(used):
            return _refused("mailgun", "the signature's token was used before")
        response = view(request, *args, **kwargs)
        if token and response.status_code < 300:
            # Only once accepted: a request that failed may be retried with the same signature.
            cache.set(used, 1, timeout=settings.WEBHOOK_MAX_AGE_SECONDS)
        return response

    return checked


def _sns_checked(view: View) -> View:
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.META.get("HTTP_AUTHORIZATION"):
            # anymail answers SNS's first, credential-less attempt with the 401 it needs.
            return view(request, *args, **kwargs)
        try:
            message = json.loads(request.body)
            if not isinstance(message, dict):
                raise SnsMessageInvalid("the body is not an SNS message")
            sns_message_verify(message, topic_arns=settings.AMAZON_SES_SNS_TOPIC_ARNS)
        except (ValueError, SnsMessageInvalid) as error:
            return _refused("amazon_ses", str(error) if isinstance(error, SnsMessageInvalid) else "not JSON")
        if _stale(sns_timestamp(message)):
            return _refused("amazon_ses", "the SNS timestamp is outside WEBHOOK_MAX_AGE_SECONDS")
        return view(request, *args, **kwargs)

    return checked


_ESP_CHECKS: dict[str, Callable[[View], View]] = {"mailgun": _mailgun_checked, "amazon_ses": _sns_checked}


def _guarded(view: View, esp: str) -> View:
    checked = _ESP_CHECKS.get(esp, lambda inner: inner)(view)

    @wraps(view)  # keeps csrf_exempt: providers cannot send our CSRF token
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Read per request, not at start-up, so what answers always follows the settings.
        if esp not in configured_esps():
            return HttpResponseNotFound()
        if not webhook_secret_configured():
            return HttpResponseForbidden("Webhooks are off until ANYMAIL_WEBHOOK_SECRET is set.\n")
        return checked(request, *args, **kwargs)

    return guarded


def anymail_patterns() -> list[URLPattern]:
    return [
        URLPattern(pattern.pattern, _guarded(pattern.callback, esp_of(pattern)), pattern.default_args, pattern.name)
        for pattern in anymail_urlpatterns
        if isinstance(pattern, URLPattern)
    ]
