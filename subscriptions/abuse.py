"""Defences for public forms: the rate limits (their rules, their counters' keys, and
the Lua that admits a request against them), the client's address, and the bot checks
(honeypot, form stamp).

Counters live in Redis, shared by every web process (in Django's local cache in the
demo without Redis). Keys never hold an address or an IP in clear: both are keyed
hashes, so the "nothing left" check finds nothing in Redis after an erasure.
"""

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from subscriptions.addresses import email_hmac
from subscriptions.redis_client import HotScript, redis_client

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


# Admit one request against the counters KEYS[1..n], n = ARGV[1]: check every counter
# first and count the hit only when all are under their limit (ARGV[2i], the counter
# expiring ARGV[2i + 1] seconds after its first hit), in one atomic step, so a refused
# request changes nothing and concurrent requests cannot both slip under a limit.
# Refused, it returns the 1-based index of the first limit hit. A script that does more
# once a request is admitted (the sign-up intake's append) adds its own steps after
# this, with its keys and arguments after the counters'; alone, it answers 0.
LIMITS_LUA = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + 1 > tonumber(ARGV[2 * i]) then return i end
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1]) end
end
"""

_admit_script = HotScript(LIMITS_LUA + "return 0\n")


def _key(hashed_key: str, limit: Limit) -> str:
    # Rolling windows (email-window, email-week) start at the first hit; the others
    # are fixed windows numbered by time, so they reset on the minute or hour.
    window = "" if limit.rolling else f":{int(time.time()) // limit.seconds}"
    return f"tidings:rl:{limit.name}:{hashed_key}{window}"


def _ttl(limit: Limit) -> int:
    # A fixed window's key outlives its window by a second so no hit lands on a dead key.
    return limit.seconds if limit.rolling else limit.seconds + 1


def _counter_keys(checks: list[tuple[str, Limit]]) -> list[str]:
    hashed = {key: _hashed(key) for key in {key for key, _ in checks}}
    return [_key(hashed[key], limit) for key, limit in checks]


def limit_counters(checks: list[tuple[str, Limit]]) -> tuple[list[str], list[object]]:
    """The Redis keys and the arguments with which LIMITS_LUA admits one request
    against every (key, limit) pair of `checks`."""
    args: list[object] = [len(checks)]
    args += [value for _, limit in checks for value in (limit.count, _ttl(limit))]
    return _counter_keys(checks), args


def raise_if_refused(checks: list[tuple[str, Limit]], answer: int) -> None:
    """Raise RateLimited when LIMITS_LUA's `answer` names one of `checks` (a positive index)."""
    if answer > 0:
        raise RateLimited(checks[answer - 1][1].name)


def admit(checks: list[tuple[str, Limit]]) -> None:
    """Count one request against every (key, limit) pair, or raise RateLimited having
    counted nothing."""
    if settings.REDIS_URL:
        keys, args = limit_counters(checks)
        answer = int(_admit_script(keys=keys, args=args))
    else:
        answer = _admit_in_cache(_counter_keys(checks), [limit for _, limit in checks])
    raise_if_refused(checks, answer)


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
    per_address_hour, window, per_week, per_hour = _mail_limits()
    return [
        *per_ip,
        (address, per_address_hour),
        (address, window),
        (address, per_week),
        (_campaign_key(campaign_id), per_hour),
    ]


def _mail_limits() -> tuple[Limit, ...]:
    return _mail_limits_of(
        settings.SIGNUP_LIMIT_PER_ADDRESS_PER_HOUR,
        settings.CONFIRMATION_EMAIL_WINDOW_SECONDS,
        settings.CONFIRMATION_EMAILS_PER_WEEK,
        settings.CONFIRMATION_EMAILS_PER_HOUR,
    )


def _campaign_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


@dataclass(frozen=True)
class ConfirmationCap:
    """One campaign's circuit breaker in the current hour."""

    sent: int  # confirmation emails let through this hour
    limit: int
    resets_at: float  # unix time the hour turns and the count starts again

    @property
    def reached(self) -> bool:
        # LIMITS_LUA refuses a request when count + 1 > limit: at the limit, the next one is refused.
        return self.sent >= self.limit


def confirmation_caps(campaign_ids: Collection[int]) -> dict[int, ConfirmationCap]:
    """Each campaign's confirmation-email circuit breaker, read without counting a
    request: one MGET of the counters the sign-up's admission increments."""
    per_hour = _mail_limits()[-1]
    ids = sorted(campaign_ids)
    keys = _counter_keys([(_campaign_key(campaign_id), per_hour) for campaign_id in ids])
    resets_at = float((int(time.time()) // per_hour.seconds + 1) * per_hour.seconds)
    if settings.REDIS_URL:
        values = list(redis_client().mget(keys)) if keys else []
    else:
        found = cache.get_many(keys)
        values = [found.get(key) for key in keys]
    return {
        campaign_id: ConfirmationCap(sent=int(value or 0), limit=per_hour.count, resets_at=resets_at)
        for campaign_id, value in zip(ids, values, strict=True)
    }


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
