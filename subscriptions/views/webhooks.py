"""django-anymail's webhook URLs, refused outright until a webhook secret is set.

Anymail alone accepts unauthenticated webhooks with only a warning when
ANYMAIL_WEBHOOK_SECRET is unset. Its events can erase people (a bounce, a
complaint, an "unsubscribe me" email), so here every anymail webhook answers 403,
writing nothing, until the secret exists. With it, anymail checks the basic-auth
credentials and, for providers that sign their webhooks, the signature too.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import URLPattern


def webhook_secret_configured() -> bool:
    return bool(settings.ANYMAIL.get("WEBHOOK_SECRET") or getattr(settings, "ANYMAIL_WEBHOOK_SECRET", None))


def _secret_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)  # keeps csrf_exempt: providers cannot send our CSRF token
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not webhook_secret_configured():
            return HttpResponseForbidden("Webhooks are off until ANYMAIL_WEBHOOK_SECRET is set.\n")
        return view(request, *args, **kwargs)

    return guarded


def anymail_patterns() -> list[URLPattern]:
    return [
        URLPattern(pattern.pattern, _secret_required(pattern.callback), pattern.default_args, pattern.name)
        for pattern in anymail_urlpatterns
    ]
