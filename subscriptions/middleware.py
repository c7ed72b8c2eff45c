"""Django's CSRF protection, taught one case that `Referrer-Policy: no-referrer` creates.

Under no-referrer the Fetch standard has browsers send `Origin: null` with every
form POST, even to the same site, and Django rejects a null Origin. Browsers that do
this also send `Sec-Fetch-Site`, a header no page can set or forge; when it says
`same-origin`, the null Origin is our own page. The CSRF token is still checked.
"""

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware


class SameOriginCsrfViewMiddleware(CsrfViewMiddleware):
    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null" and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            return True
        # A private Django method, so django-stubs does not declare it.
        return bool(super()._origin_verified(request))  # type: ignore[misc]
