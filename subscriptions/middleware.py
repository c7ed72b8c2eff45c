"""Django's CSRF protection, taught one case that `Referrer-Policy: no-referrer` creates.

Under no-referrer the Fetch standard has browsers send `Origin: null` with every
form POST, even to the same site, and Django rejects a null Origin. Browsers that do
this also send `Sec-Fetch-Site`, a header no page can set or forge; when it says
`same-origin`, the null Origin is our own page. The CSRF token is still checked.

The sign-up page takes no token (docs/signup.md) but still refuses a POST that the
browser says came from another site, with the same judgement (posted_from_our_pages).
"""

from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import get_callable


class SameOriginCsrfViewMiddleware(CsrfViewMiddleware):
    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null" and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            return True
        # A private Django method, so django-stubs does not declare it.
        return bool(super()._origin_verified(request))  # type: ignore[misc]


def posted_from_our_pages(request: HttpRequest) -> bool:
    """For a form that takes no CSRF token (the sign-up page): False when the browser
    says the POST came from another site. Judged by the Origin header as the CSRF
    middleware judges it (our host, CSRF_TRUSTED_ORIGINS, or `null` from our own page);
    a client that sends no Origin (older browsers, scripts) gives nothing to judge by."""
    if "HTTP_ORIGIN" not in request.META:
        return True
    return bool(_judge(tuple(settings.CSRF_TRUSTED_ORIGINS))._origin_verified(request))


def refuse_cross_site(request: HttpRequest) -> HttpResponse:
    """The CSRF failure page ("Your form could not be sent"), 403."""
    reason = f"Origin checking failed - {request.META.get('HTTP_ORIGIN')} does not match any trusted origins."
    return get_callable(settings.CSRF_FAILURE_VIEW)(request, reason=reason)


@lru_cache(maxsize=4)
def _judge(trusted_origins: tuple[str, ...]) -> SameOriginCsrfViewMiddleware:
    # One instance per setting value, as Django keeps one per process; it reads
    # CSRF_TRUSTED_ORIGINS once.
    return SameOriginCsrfViewMiddleware(lambda request: HttpResponse())
