"""Defences for public forms: rate limits, the confirmation-email throttle, bot checks.

Counters live in Django's cache (Redis in production, so every web process shares
them). Keys never hold an address or an IP in clear: both are keyed hashes, so the
"nothing left" check finds nothing in Redis after an erasure.
"""

import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from subscriptions.addresses import email_hmac
from subscriptions.redis_client import HotScript

logger = logging.getLogger(__name__)

FORM_STAMP_SALT = "tidings.form-stamp"
# The one per-address limit on "lost your link?": a refusal by it means a link went to
# that inbox minutes ago, so the page says to look there (views/manage.py).
MANAGE_LINK_WINDOW = "manage-link-window"


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
    elif not _forwarded_warning_given.is_set() and any(name in request.headers for name in FORWARDING_HEADERS):
        _warn_forwarded_untrusted()
    return str(request.META.get("REMOTE_ADDR", ""))


# Headers a proxy in front adds. Seeing one with no trusted proxy configured most likely
# means every visitor arrives from the proxy's address and shares one per-IP limit.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
_forwarded_warning_given = threading.Event()


def _warn_forwarded_untrusted() -> None:
    _forwarded_warning_given.set()  # once per process: this is configuration, not an event
    logger.warning(
        "A request carries a forwarding header (X-Forwarded-For or similar) but no trusted proxy is "
        "configured, so the per-client limits see the proxy's address, not the client's. Behind a proxy, "
        "set TRUSTED_PROXY_HEADER (and TRUSTED_PROXY_COUNT); see docs/operations.md."
    )


def forwarded_warning_reset() -> None:
    """Forget that the warning was given (tests)."""
    _forwarded_warning_given.clear()


def _hashed(value: str) -> str:
    return hmac.digest(settings.SUPPRESSION_KEY.encode(), value.encode(), "sha256").hex()[:32]


# Check every counter first and count the hit only when all are under their limit, in
# one atomic round trip: a refused request changes nothing, and concurrent requests
# cannot both slip under a limit. Returns the 1-based index of the first limit hit.
# With an entry to append (ARGV[1] = 2: the last two keys are the intake stream and its
# drain flag), an admitted request is also added to the stream in the same step, and
# the answer is -1 when no drain was on its way (the caller asks for one), else 0.
_ADMIT_LUA = """
local n = #KEYS - tonumber(ARGV[1])
for i = 1, n do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + 1 > tonumber(ARGV[2 * i]) then return i end
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1]) end
end
if n < #KEYS then
  redis.call('XADD', KEYS[n + 1], '*', ARGV[2 * n + 2], ARGV[2 * n + 3])
  if redis.call('SET', KEYS[n + 2], '1', 'NX', 'EX', ARGV[2 * n + 4]) then return -1 end
end
return 0
"""


@dataclass(frozen=True)
class Append:
    """A stream entry to add in the same atomic step as the admission (see intake.py)."""

    stream: str
    flag: str
    field: str
    payload: str
    flag_seconds: int


_admit_script = HotScript(_ADMIT_LUA)


def _key(hashed_key: str, limit: Limit) -> str:
    # Rolling windows (email-window, email-week) start at the first hit; the others
    # are fixed windows numbered by time, so they reset on the minute or hour.
    window = "" if limit.rolling else f":{int(time.time()) // limit.seconds}"
    return f"tidings:rl:{limit.name}:{hashed_key}{window}"


def _ttl(limit: Limit) -> int:
    # A fixed window's key outlives its window by a second so no hit lands on a dead key.
    return limit.seconds if limit.rolling else limit.seconds + 1


def admit(checks: list[tuple[str, Limit]], *, append: Append | None = None) -> bool:
    """Count one request against every (key, limit) pair, or raise RateLimited having
    counted (and appended) nothing. With `append` (Redis only), the admitted request's
    entry is added to its stream; returns True when the caller must ask for a drain."""
    hashed = {key: _hashed(key) for key in {key for key, _ in checks}}
    keys = [_key(hashed[key], limit) for key, limit in checks]
    if settings.REDIS_URL:
        args: list[object] = [2 if append else 0]
        args += [value for _, limit in checks for value in (limit.count, _ttl(limit))]
        if append:
            keys += [append.stream, append.flag]
            args += [append.field, append.payload, append.flag_seconds]
        answer = int(_admit_script(keys=keys, args=args))
    elif append is not None:
        raise ValueError("an intake append needs Redis")
    else:
        answer = _admit_in_cache(keys, [limit for _, limit in checks])
    if answer > 0:
        raise RateLimited(checks[answer - 1][1].name)
    return answer < 0


def _admit_in_cache(keys: list[str], limits: list[Limit]) -> int:
    """The demo's path without Redis: the same rule through Django's local cache."""
    for index, (key, limit) in enumerate(zip(keys, limits, strict=True), start=1):
        if (cache.get(key) or 0) + 1 > limit.count:
            return index
    for key, limit in zip(keys, limits, strict=True):
        if not cache.add(key, 1, timeout=_ttl(limit)):
            cache.incr(key)
    return 0


def _ip_limits() -> tuple[Limit, ...]:
    return _ip_limits_of(settings.SIGNUP_LIMIT_PER_IP_PER_MINUTE, settings.SIGNUP_LIMIT_PER_IP_PER_HOUR)


# The limits are built once per setting value, not on every request.
@lru_cache(maxsize=16)
def _ip_limits_of(per_minute: int, per_hour: int) -> tuple[Limit, ...]:
    return (Limit("ip-minute", per_minute, 60), Limit("ip-hour", per_hour, 3600))


@lru_cache(maxsize=16)
def _mail_limits_of(per_address_hour: int, window_seconds: int, per_week: int, per_hour: int) -> tuple[Limit, ...]:
    return (
        Limit("address-hour", per_address_hour, 3600),
        Limit("email-window", 1, window_seconds, rolling=True),
        Limit("email-week", per_week, 7 * 86400, rolling=True),
        # The circuit breaker: a flood across many addresses (list-bombing through us)
        # stops the campaign's confirmation mail until the hour turns. Per campaign, so
        # a flood on one campaign never stops sign-ups on the others.
        Limit("email-campaign-hour", per_hour, 3600),
    )


@lru_cache(maxsize=16)
def _manage_link_limit_of(window_seconds: int) -> Limit:
    return Limit(MANAGE_LINK_WINDOW, 1, window_seconds, rolling=True)


def check_ip(request: HttpRequest) -> None:
    """Count one request from this client against the per-IP limits alone."""
    admit([(client_ip(request), limit) for limit in _ip_limits()])


def check_limits(*, key: str, limits: tuple[Limit, ...]) -> None:
    admit([(key, limit) for limit in limits])


def claim_confirmation_email(
    *, campaign_id: int, email: str, ip: str | None = None, append: Append | None = None
) -> bool:
    """Admit one request that will mail a confirmation to `email`, or raise RateLimited.
    With `append`, see admit()."""
    return admit(signup_checks(ip=ip, campaign_id=campaign_id, email=email), append=append)


def signup_checks(*, ip: str | None, campaign_id: int, email: str) -> list[tuple[str, Limit]]:
    """Every limit one sign-up request must pass: per client IP (when there is one: the
    API has its own per-key limit instead), per address, and on confirmation mail."""
    address = f"{campaign_id}:{email_hmac(email)}"
    per_ip = [(ip, limit) for limit in _ip_limits()] if ip is not None else []
    per_address_hour, window, per_week, per_hour = _mail_limits_of(
        settings.SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR,
        settings.CONFIRMATION_EMAIL_WINDOW_SECONDS,
        settings.CONFIRMATION_EMAILS_PER_WEEK,
        settings.CONFIRMATION_EMAILS_PER_HOUR,
    )
    return [
        *per_ip,
        (address, per_address_hour),
        (address, window),
        (address, per_week),
        (f"campaign:{campaign_id}", per_hour),
    ]


def claim_manage_link_email(*, campaign_id: int, email: str, ip: str | None = None) -> None:
    """Admit one "lost your link?" request for `email`, or raise RateLimited.

    Anyone can ask for anyone's address, so these requests have limits of their own,
    apart from the sign-up's (which count per week): a stranger's requests must never
    keep the person from signing up, nor from their own link, for more than a window of
    minutes. The link only ever goes to the address's own inbox, and only when it is
    subscribed, so it cannot be used to mail strangers: the per-client limits and one
    email per address per window are enough."""
    address = f"manage-link:{campaign_id}:{email_hmac(email)}"
    per_ip = [(ip, limit) for limit in _ip_limits()] if ip is not None else []
    admit([*per_ip, (address, _manage_link_limit_of(settings.MANAGE_LINK_WINDOW_SECONDS))])


def form_stamp(*, issued: int | None = None) -> str:
    """A signed time for the form, so a submission faster than a person can type is a
    bot: `<unix time>.<keyed hash>`, checked with one HMAC (signing.loads costs 6x)."""
    issued = int(time.time()) if issued is None else issued
    return f"{issued}.{_stamp_mac(str(issued), settings.SECRET_KEY)}"


def _stamp_mac(issued: str, secret: str) -> str:
    # Django's salted_hmac(FORM_STAMP_SALT, issued, secret, algorithm="sha256"), with its
    # key derived once per secret rather than on every request.
    return hmac.digest(_stamp_key(secret), issued.encode(), "sha256").hex()[:32]


@lru_cache(maxsize=8)
def _stamp_key(secret: str) -> bytes:
    return hashlib.sha256(f"{FORM_STAMP_SALT}{secret}".encode()).digest()


_STAMP = re.compile(r"([1-9][0-9]{0,11})\.([0-9a-f]{32})", re.ASCII)


def _stamp_issued(stamp: str) -> int | None:
    """When a stamp was issued, or None for a forged or malformed one. Stamps made
    under a previous SECRET_KEY (SECRET_KEY_FALLBACKS) still count."""
    if ":" in stamp:  # the signing.dumps() format of pages served before this one
        try:
            return int(signing.loads(stamp, salt=FORM_STAMP_SALT))
        except (signing.BadSignature, ValueError, TypeError):
            return None
    found = _STAMP.fullmatch(stamp)
    if found is None:
        return None
    issued, mac = found.groups()
    for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        if constant_time_compare(mac, _stamp_mac(issued, secret)):
            return int(issued)
    return None


def looks_automated(*, honeypot: str, stamp: str | None) -> bool:
    """True for a filled honeypot or a form sent back too soon (or with a forged stamp).

    `stamp` is None for forms embedded on other sites, which cannot carry one; our own
    page's form always does, so there an empty or missing stamp is a bot's. A stamp
    has no expiry: a page left open overnight was filled at a person's pace, and a bot
    can fetch a fresh stamp whenever it likes anyway.
    """
    if honeypot:
        return True
    if stamp is None:
        return False
    issued = _stamp_issued(stamp)
    return issued is None or time.time() - issued < settings.SIGNUP_MIN_FILL_SECONDS
