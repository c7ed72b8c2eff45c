"""Staff sign-in rules around django-allauth, which does the passwords, codes and keys.

Here: the account adapter (no public sign-up, lockout per account, the client address
the rest of the app trusts), the middleware that enforces a second factor, the idle
and absolute session limits and the staff host name, and the re-authentication
helpers that views guarding the riskiest actions call.
"""

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.account.decorators import reauthentication_required as allauth_reauthentication_required
from allauth.account.forms import LoginForm
from allauth.account.internal.flows import reauthentication
from allauth.core import context
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model, logout
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.request import split_domain_port
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from subscriptions.abuse import client_ip

# Session keys: when this session signed in, and when it last made a request.
SIGNED_IN_AT = "staff_signed_in_at"
LAST_SEEN_AT = "staff_last_seen_at"
# Set when the session signed in before the user had a second factor: they are enrolling.
SIGNED_IN_TO_ENROL = "staff_signed_in_to_enrol"

# What a member without a second factor may still open: enrolment itself, the
# re-authentication it may ask for, and signing out.
ENROLMENT_PAGES = frozenset(
    {
        "account_logout",
        "account_reauthenticate",
        "mfa_reauthenticate",
        "mfa_reauthenticate_webauthn",
        "mfa_index",
        "mfa_activate_totp",
        "mfa_view_recovery_codes",
        "mfa_download_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_add_webauthn",
    }
)
SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
REAUTHENTICATION_PAGES = frozenset({"account_reauthenticate", "mfa_reauthenticate", "mfa_reauthenticate_webauthn"})

SIGNED_OUT_IDLE = "idle"
SIGNED_OUT_MAX_AGE = "max_age"
_SIGN_OUT_MESSAGES = {
    SIGNED_OUT_IDLE: "You were signed out because you had not used the staff area for {minutes} minutes.",
    SIGNED_OUT_MAX_AGE: "You were signed out because you signed in more than {hours} hours ago. Sign in again.",
}


class StaffLoginForm(LoginForm):
    """allauth's login form, with a label that says what to type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or email address"
        self.fields["login"].widget.attrs["autocomplete"] = "username"
        self.fields["login"].error_messages["required"] = "Enter your username or email address"
        self.fields["password"].error_messages["required"] = "Enter your password"
        # The page links to password reset below the form, as GOV.UK sign-in pages do.
        self.fields["password"].help_text = ""


class StaffAccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": (
            "Too many failed attempts to sign in to this account or from this address. "
            "Wait 5 minutes, then try again, or reset your password."
        ),
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Staff accounts come from invitations and `createsuperuser`, never a public form.
        return False

    def get_client_ip(self, request: HttpRequest) -> str:
        # The same trust in proxy headers as every other rate limit in the app.
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client address.")
        return ip

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth counts failures per name typed; one account reachable by its username
        # and its email address would get the allowance twice. Count per account.
        login = str(credentials.get("email", credentials.get("username", ""))).strip().lower()
        matches = list(
            get_user_model()
            .objects.filter(Q(username__iexact=login) | Q(email__iexact=login))
            .values_list("pk", flat=True)[:2]
        )
        # A password reset clears the key of the reset address, which maps to the same account.
        return f"user:{matches[0]}" if len(matches) == 1 else f"login:{login}"

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            from subscriptions.auth_audit import sign_in_locked_out

            sign_in_locked_out(request=request, attempted=str(credentials.get("username") or credentials.get("email")))
            raise

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        # Enrolling a first second factor straight after typing the password is not a
        # reason to type it again; changing factors later is.
        if app == "allauth.mfa" and _signed_in_moments_ago(context.request):
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


def _signed_in_moments_ago(request: HttpRequest | None) -> bool:
    """Did this session sign in, with no second factor yet, within the re-authentication timeout?"""
    if request is None or not request.user.is_authenticated or not request.session.get(SIGNED_IN_TO_ENROL):
        return False
    signed_in_at = request.session.get(SIGNED_IN_AT)
    return signed_in_at is not None and time.time() - signed_in_at < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT


def session_started(*, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """On every sign-in (Django's user_logged_in): start the session's clocks."""
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SIGNED_IN_AT] = now
        request.session[LAST_SEEN_AT] = now
        request.session[SIGNED_IN_TO_ENROL] = not is_mfa_enabled(user, SECOND_FACTORS)


def connect() -> None:
    user_logged_in.connect(session_started, dispatch_uid="staff_auth.session_started")


def in_staff_area(path: str) -> bool:
    return any(path.startswith(f"/{prefix}/") for prefix in (settings.STAFF_PATH, settings.ADMIN_PATH))


def session_expiry(request: HttpRequest, now: float, *, active: bool = True) -> str | None:
    """Why this signed-in session must end now (SIGNED_OUT_IDLE or SIGNED_OUT_MAX_AGE), or
    None. Only an `active` request (one in the staff area) restarts the idle clock."""
    signed_in_at = request.session.get(SIGNED_IN_AT)
    last_seen_at = request.session.get(LAST_SEEN_AT)
    if signed_in_at is None or last_seen_at is None:
        # A session from before these limits existed: its clocks start now.
        request.session[SIGNED_IN_AT] = request.session[LAST_SEEN_AT] = now
        return None
    if now - signed_in_at > settings.STAFF_SESSION_MAX_HOURS * 3600:
        return SIGNED_OUT_MAX_AGE
    if now - last_seen_at > settings.STAFF_IDLE_TIMEOUT_MINUTES * 60:
        return SIGNED_OUT_IDLE
    if active:
        request.session[LAST_SEEN_AT] = now
    return None


def sign_out_expired(request: HttpRequest, reason: str) -> HttpResponse:
    """End the session and send its user to the login page, saying why."""
    # auth_audit's sign-out receiver records the reason.
    request.staff_sign_out_reason = reason  # type: ignore[attr-defined]
    logout(request)
    message = _SIGN_OUT_MESSAGES[reason].format(
        minutes=settings.STAFF_IDLE_TIMEOUT_MINUTES, hours=settings.STAFF_SESSION_MAX_HOURS
    )
    messages.info(request, message)
    login_url = reverse("account_login")
    if request.method == "GET":
        login_url += "?" + urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
    return HttpResponseRedirect(login_url)


def on_staff_host(request: HttpRequest) -> bool:
    if not settings.STAFF_HOST:
        return True
    host, _port = split_domain_port(request.get_host())
    return host == settings.STAFF_HOST


class StaffAuthMiddleware:
    """Staff host, session limits, and a second factor before anything in the staff area.

    Runs after allauth's and Django's authentication middleware. No setting turns the
    second factor off: a member without one sees only the enrolment pages.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        staff_area = in_staff_area(request.path_info)
        if staff_area and not on_staff_host(request):
            raise Http404("The staff area is not served on this host.")
        # No session cookie, nobody signed in: the public pages' usual case, answered without
        # loading a session or a user (most of a hello-world request's cost otherwise).
        signed_in = settings.SESSION_COOKIE_NAME in request.COOKIES and request.user.is_authenticated
        reason = session_expiry(request, time.time(), active=staff_area) if signed_in else None
        if reason and staff_area:
            return sign_out_expired(request, reason)
        if reason:
            # A public page (a sign-up form, an unsubscribe link) is served as usual, to nobody.
            request.staff_sign_out_reason = reason  # type: ignore[attr-defined]
            logout(request)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not in_staff_area(request.path_info) or not request.user.is_authenticated:
            return None
        match = request.resolver_match
        if match is None or match.url_name not in REAUTHENTICATION_PAGES:
            # An action set aside for re-authentication is replayed only from the page
            # that asks for it: a member who went elsewhere instead has changed their mind.
            request.session.pop(reauthentication.STATE_SESSION_KEY, None)
        if match is not None and match.url_name in ENROLMENT_PAGES:
            return None
        if is_mfa_enabled(request.user, SECOND_FACTORS):
            return None
        messages.info(request, "Set up a second way to prove it is you before you continue.")
        return HttpResponseRedirect(reverse("mfa_activate_totp"))


# --- Re-authentication before the riskiest actions ----------------------------------
# Send to everyone, erase, export, end a campaign, change the team: the member proves
# again, within ACCOUNT_REAUTHENTICATION_TIMEOUT seconds, that it is them (password,
# or a second factor), on allauth's own re-authentication pages.


def reauthentication_needed(request: HttpRequest) -> bool:
    """True unless this session re-authenticated within ACCOUNT_REAUTHENTICATION_TIMEOUT."""
    # app="" makes allauth always ask, whatever its per-app settings say.
    return reauthentication.is_reauthentication_required(request, app="")


def reauthenticate_redirect(request: HttpRequest, next_url: str) -> HttpResponse:
    """Send the member to re-authenticate, then back: a POST is replayed as it was sent,
    any other request goes on to `next_url` (a path on this site)."""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("staff:home")
    methods = get_adapter(request).get_reauthentication_methods(request.user)
    url = methods[0]["url"] if methods else reverse("account_login")
    if request.method == "POST":
        # allauth keeps the POST in the session and replays it once the password (or
        # code) is confirmed, so the invitation or send the member asked for still happens.
        return reauthentication.suspend_request(request, url)
    return HttpResponseRedirect(f"{url}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")


def reauthentication_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a function view: re-authenticate first (GET included), then carry on.

    Built on allauth's decorator: a POST interrupted by it is kept in the session and
    replayed once the member has re-authenticated, so nothing typed is lost.
    """
    return allauth_reauthentication_required(view, app="")
