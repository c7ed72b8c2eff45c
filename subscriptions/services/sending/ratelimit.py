"""A token bucket in Redis, shared by every worker that sends through one mailer.

The whole take-or-wait decision runs inside one Lua script, so any number of
workers on any number of hosts draw from the same bucket without races, and the
clock is Redis's own (TIME), so workers' clocks need not agree. The bucket is reached
through the process's one connection pool (subscriptions.redis_client).
"""

import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from subscriptions.redis_client import redis_client

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'paused_until')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local paused_until = tonumber(state[3]) or 0
if now < paused_until then
  return {0, tostring(paused_until - now)}
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
local wait = 0
if granted == 0 then wait = (1 - tokens) / rate end
return {granted, tostring(wait)}
"""

# An ESP that answers 429 is over its limit for every worker, not just the one it told.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if until_ > current then
  redis.call('HSET', KEYS[1], 'paused_until', tostring(until_))
  redis.call('EXPIRE', KEYS[1], 3600)
end
return tostring(until_ - now)
"""


class RateLimitTimeout(Exception):
    """No token came within the caller's deadline."""


@dataclass(frozen=True)
class Grant:
    granted: int
    wait_seconds: float


@cache
def _scripts() -> tuple[redis.commands.core.Script, redis.commands.core.Script]:
    client = redis_client()
    return client.register_script(_TAKE), client.register_script(_PAUSE)


def _key(mailer: str) -> str:
    return f"tidings:ratelimit:{mailer}"


def ratelimit_try_take(*, mailer: str, count: int, rate: float | None = None, burst: int | None = None) -> Grant:
    """Take up to `count` tokens now; say how long to wait when none are left."""
    if not settings.REDIS_URL:
        # The demo: one process writing to a local outbox, no bucket to share and no
        # ESP to protect.
        return Grant(granted=max(count, 1), wait_seconds=0.0)
    rate = rate or settings.SEND_RATE_PER_SECOND
    burst = burst or settings.SEND_RATE_BURST
    take, _ = _scripts()
    granted, wait = take(keys=[_key(mailer)], args=[rate, burst, max(count, 1)])
    return Grant(granted=int(granted), wait_seconds=float(wait))


def ratelimit_take(
    *, mailer: str, count: int, deadline_seconds: float = 60.0, rate: float | None = None, burst: int | None = None
) -> int:
    """Block until at least one token is granted (up to `count`); return how many."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        grant = ratelimit_try_take(mailer=mailer, count=count, rate=rate, burst=burst)
        if grant.granted:
            return grant.granted
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RateLimitTimeout(f"no send slot within {deadline_seconds:.0f}s")
        time.sleep(min(max(grant.wait_seconds, 0.001), remaining, 1.0))


def ratelimit_pause(*, mailer: str, seconds: float) -> float:
    """Stop every worker drawing from this mailer's bucket for `seconds` (never shortens a pause)."""
    if not settings.REDIS_URL:  # the demo (see ratelimit_try_take)
        return max(seconds, 0.0)
    _, pause = _scripts()
    return float(pause(keys=[_key(mailer)], args=[max(seconds, 0.0)]))
