"""Defences for public forms: rate limits, the confirmation-email throttle, bot checks.

Counters live in Django's cache (Redis in production, so every web process shares
them). Keys never hold an address or an IP in clear: both are keyed hashes, so the
"nothing left" check finds nothing in Redis after an erasure.
"""

import hashlib
import hmac
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest

from subscriptions.addresses import email_hmac

FORM_STAMP_SALT = "tidings.form-stamp"


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    seconds: int


class RateLimited(Exception):
    """Over a limit: the caller answers 429 and changes nothing."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


def client_ip(request: HttpRequest) -> str:
    """The client address, trusting a forwarding header only when one is configured.

    With N trusted proxies in front, the client is the Nth address from the right of
    the header; anything further left was written by the client and is not trusted.
    """
    header = settings.TRUSTED_PROXY_HEADER
    if header:
        forwarded = request.headers.get(header, "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= settings.TRUSTED_PROXY_COUNT:
            return hops[-settings.TRUSTED_PROXY_COUNT]
    return str(request.META.get("REMOTE_ADDR", ""))


def _hashed(value: str) -> str:
    return hmac.new(settings.SUPPRESSION_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def _over_limit(key: str, limit: Limit) -> bool:
    """Count one hit in a fixed window; True when the window's count passes the limit."""
    window = int(time.time()) // limit.seconds
    full_key = f"rl:{limit.name}:{key}:{window}"
    cache.add(full_key, 0, timeout=limit.seconds + 1)
    try:
        hits = cache.incr(full_key)
    except ValueError:  # expired between add and incr
        cache.set(full_key, 1, timeout=limit.seconds + 1)
        hits = 1
    return hits > limit.count


def check_limits(*, key: str, limits: tuple[Limit, ...]) -> None:
    for limit in limits:
        if _over_limit(_hashed(key), limit):
            raise RateLimited(limit.name)


def ip_limits() -> tuple[Limit, ...]:
    return (
        Limit("ip-minute", settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE, 60),
        Limit("ip-hour", settings.SIGNUP_LIMIT_PER_IP_PER_HOUR, 3600),
    )


def address_limits() -> tuple[Limit, ...]:
    return (Limit("address-hour", settings.SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR, 3600),)


def check_ip(request: HttpRequest) -> None:
    check_limits(key=client_ip(request), limits=ip_limits())


def check_address(*, campaign_id: int, email: str) -> None:
    check_limits(key=f"{campaign_id}:{email_hmac(email)}", limits=address_limits())


def claim_confirmation_email(*, campaign_id: int, email: str) -> None:
    """Allow at most one confirmation email per address per window, a weekly cap, and a
    global ceiling. Raises RateLimited (and sends nothing) when any is reached."""
    address = f"{campaign_id}:{email_hmac(email)}"
    window_key = f"rl:email-window:{_hashed(address)}"
    if not cache.add(window_key, 1, timeout=settings.CONFIRMATION_EMAIL_WINDOW_SECONDS):
        raise RateLimited("email-window")
    try:
        check_limits(key=address, limits=(Limit("email-week", settings.CONFIRMATION_EMAILS_PER_WEEK, 7 * 86400),))
        # The circuit breaker: a flood of sign-ups across many addresses (list-bombing
        # through us) stops all confirmation mail until the hour turns.
        check_limits(key="all", limits=(Limit("email-global", settings.CONFIRMATION_EMAILS_PER_HOUR, 3600),))
    except RateLimited:
        cache.delete(window_key)
        raise


def form_stamp() -> str:
    """A signed time for the form, so a submission faster than a person can type is a bot."""
    return signing.dumps(int(time.time()), salt=FORM_STAMP_SALT)


def looks_automated(*, honeypot: str, stamp: str | None) -> bool:
    """True for a filled honeypot or a form sent back too soon (or with a forged stamp).

    `stamp` is None for forms embedded on other sites, which cannot carry one.
    """
    if honeypot:
        return True
    if stamp is None:
        return False
    try:
        issued = signing.loads(stamp, salt=FORM_STAMP_SALT, max_age=86400)
    except signing.BadSignature:
        return True
    return time.time() - int(issued) < settings.SIGNUP_MIN_FILL_SECONDS
