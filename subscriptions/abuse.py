"""Defences for public forms: rate limits, the confirmation-email throttle, bot checks.

Counters live in Django's cache (Redis in production, so every web process shares
them). Keys never hold an address or an IP in clear: both are keyed hashes, so the
"nothing left" check finds nothing in Redis after an erasure.
"""

import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import cache as cache_on_first_use
from typing import Any

import redis
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
    rolling: bool = False


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


# Check every counter first and count the hit only when all are under their limit, in
# one atomic round trip: a refused request changes nothing, and concurrent requests
# cannot both slip under a limit. Returns the 1-based index of the first limit hit.
_ADMIT_LUA = """
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count + 1 > tonumber(ARGV[2 * i - 1]) then return i end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
end
return 0
"""


@cache_on_first_use
def _redis() -> Any:
    client = redis.Redis.from_url(settings.REDIS_URL)
    return client, client.register_script(_ADMIT_LUA)


def _key(key: str, limit: Limit) -> str:
    # Rolling windows (email-window, email-week) start at the first hit; the others
    # are fixed windows numbered by time, so they reset on the minute or hour.
    window = "" if limit.rolling else f":{int(time.time()) // limit.seconds}"
    return f"tidings:rl:{limit.name}:{_hashed(key)}{window}"


def _ttl(limit: Limit) -> int:
    # A fixed window's key outlives its window by a second so no hit lands on a dead key.
    return limit.seconds if limit.rolling else limit.seconds + 1


def admit(checks: list[tuple[str, Limit]]) -> None:
    """Count one request against every (key, limit) pair, or raise RateLimited having
    counted nothing."""
    keys = [_key(key, limit) for key, limit in checks]
    if settings.REDIS_URL:
        _, script = _redis()
        args = [value for _, limit in checks for value in (limit.count, _ttl(limit))]
        refused = int(script(keys=keys, args=args))
    else:
        refused = _admit_in_cache(keys, [limit for _, limit in checks])
    if refused:
        raise RateLimited(checks[refused - 1][1].name)


def _admit_in_cache(keys: list[str], limits: list[Limit]) -> int:
    """The demo's path without Redis: the same rule through Django's local cache."""
    for index, (key, limit) in enumerate(zip(keys, limits, strict=True), start=1):
        if (cache.get(key) or 0) + 1 > limit.count:
            return index
    for key, limit in zip(keys, limits, strict=True):
        if not cache.add(key, 1, timeout=_ttl(limit)):
            cache.incr(key)
    return 0


def _ip_limits() -> list[Limit]:
    return [
        Limit("ip-minute", settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE, 60),
        Limit("ip-hour", settings.SIGNUP_LIMIT_PER_IP_PER_HOUR, 3600),
    ]


def check_ip(request: HttpRequest) -> None:
    """Count one request from this client against the per-IP limits alone."""
    admit([(client_ip(request), limit) for limit in _ip_limits()])


def check_limits(*, key: str, limits: tuple[Limit, ...]) -> None:
    admit([(key, limit) for limit in limits])


def claim_confirmation_email(*, campaign_id: int, email: str, ip: str | None = None) -> None:
    """Admit one request that will mail a confirmation to `email`, or raise RateLimited."""
    admit(signup_checks(ip=ip, campaign_id=campaign_id, email=email))


def signup_checks(*, ip: str | None, campaign_id: int, email: str) -> list[tuple[str, Limit]]:
    """Every limit one sign-up request must pass: per client IP (when there is one: the
    API has its own per-key limit instead), per address, and on confirmation mail."""
    address = f"{campaign_id}:{email_hmac(email)}"
    per_ip = [(ip, limit) for limit in _ip_limits()] if ip is not None else []
    return [
        *per_ip,
        (address, Limit("address-hour", settings.SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR, 3600)),
        (address, Limit("email-window", 1, settings.CONFIRMATION_EMAIL_WINDOW_SECONDS, rolling=True)),
        (address, Limit("email-week", settings.CONFIRMATION_EMAILS_PER_WEEK, 7 * 86400, rolling=True)),
        # The circuit breaker: a flood across many addresses (list-bombing through us)
        # stops all confirmation mail until the hour turns.
        ("all", Limit("email-global", settings.CONFIRMATION_EMAILS_PER_HOUR, 3600)),
    ]


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
