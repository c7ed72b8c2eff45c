"""The sign-up intake stream in Redis: the one script that admits a sign-up under the
rate limits and appends it (append), entries sealed with AES-GCM so Redis never holds an
address or a name in clear, their reading through a consumer group (read, done), and the
flag that keeps one drain asked for at a time (hold, release). Needs Redis 7
(XAUTOCLAIM's reply shape).

Why a stream, and what at-least-once delivery and the flag guarantee:
docs/adr/0002-signup-intake-stream.md.
"""

import base64
import hashlib
import hmac
import os
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from redis.exceptions import ResponseError

from subscriptions import abuse
from subscriptions.redis_client import HotScript, redis_client

STREAM = "tidings:signups"
GROUP = "record"
DRAIN_FLAG = "tidings:signups:drain"
FLAG_SECONDS = 60
STALE_MS = 60_000
FIELD = "entry"
_KEY_LABEL = b"tidings.signup-intake"
_NONCE_BYTES = 12

# The rate limits' admission (abuse.LIMITS_LUA: a refusal answers the index of the limit
# hit, having changed nothing), then the append: the entry goes on the stream and the
# drain flag goes up, answering -1 when it was down (the caller asks for a drain), else 0.
_APPEND_LUA = (
    abuse.LIMITS_LUA
    + """
redis.call('XADD', KEYS[n + 1], '*', ARGV[2 * n + 2], ARGV[2 * n + 3])
if redis.call('SET', KEYS[n + 2], '1', 'NX', 'EX', ARGV[2 * n + 4]) then return -1 end
return 0
"""
)
_append_script = HotScript(_APPEND_LUA)

# Clear the flag only when nothing is left, in one step with the check: an append after
# this finds the flag gone and asks for a drain; one before it keeps this drain going.
_RELEASE_LUA = """
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


def enabled() -> bool:
    """Without Redis (the demo on SQLite) a sign-up is recorded in its request."""
    return bool(settings.REDIS_URL)


@cache
def _cipher(secret: str) -> AESGCM:
    """The cipher for one secret, derived once per process (sealing is on the request path)."""
    return AESGCM(hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest())


def seal(payload: str) -> str:
    """`payload` encrypted and authenticated under the current SECRET_KEY."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(settings.SECRET_KEY).encrypt(nonce, payload.encode(), _KEY_LABEL)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str) -> str:
    """The payload `seal` made, under SECRET_KEY or one of SECRET_KEY_FALLBACKS (an
    entry sealed just before a key rotation). Raises ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, UnicodeEncodeError) as error:
        raise ValueError("not a sealed intake entry") from error
    nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        try:
            return _cipher(secret).decrypt(nonce, sealed, _KEY_LABEL).decode()
        except (InvalidTag, ValueError):
            continue
    raise ValueError("not a sealed intake entry")


def append(payload: str, *, checks: list[tuple[str, abuse.Limit]]) -> bool:
    """Admit one request under `checks` (abuse.signup_checks) and append `payload`,
    sealed, in one atomic Redis round trip; or raise abuse.RateLimited having counted
    and appended nothing. True when no drain was on its way: the caller asks for one."""
    keys, args = abuse.limit_counters(checks)
    keys += [STREAM, DRAIN_FLAG]
    args += [FIELD, seal(payload), FLAG_SECONDS]
    answer = int(_append_script(keys=keys, args=args))
    abuse.raise_if_refused(checks, answer)
    return answer < 0


def _ensure_group(client: Any) -> None:
    # From id 0: entries appended before the group existed are read too.
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def read(*, consumer: str, count: int) -> list[tuple[str, str]]:
    """Up to `count` entries for `consumer` as (entry id, sealed payload): first its own
    that it read before and has not recorded (a retried task), then any that a dead
    reader has held for longer than STALE_MS, then new ones. An entry without the
    expected field comes back with an empty payload, for the caller to drop."""
    client = redis_client()
    _ensure_group(client)
    # redis-py types these replies loosely (they depend on the protocol version): read
    # them as the RESP2 shapes they are here.
    own: Any = client.xreadgroup(GROUP, consumer, {STREAM: "0"}, count=count)
    entries: list[Any] = own[0][1] if own else []
    if not entries:
        claim: Any = client.xautoclaim(STREAM, GROUP, consumer, min_idle_time=STALE_MS, start_id="0-0", count=count)
        entries = claim[1] or []
    if not entries:
        answer: Any = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count)
        entries = answer[0][1] if answer else []
    # An entry deleted while pending comes back without fields; it needs no recording.
    return [(_text(entry_id), _text((fields or {}).get(FIELD.encode(), b""))) for entry_id, fields in entries]


def done(entry_ids: list[str]) -> None:
    """Forget finished entries: acknowledged, and deleted with the data they hold."""
    if not entry_ids:
        return
    pipe = redis_client().pipeline(transaction=True)
    pipe.xack(STREAM, GROUP, *entry_ids)
    pipe.xdel(STREAM, *entry_ids)
    pipe.execute()


def hold() -> None:
    """A running drain keeps the flag up, so appends do not ask for another one."""
    redis_client().set(DRAIN_FLAG, "1", ex=FLAG_SECONDS)


def release() -> bool:
    """Clear the flag if the stream is empty. False: entries remain (new ones, or ones
    in another reader's hands), and the flag stays."""
    return bool(_release_script()(keys=[STREAM, DRAIN_FLAG]))


@cache
def _release_script() -> Any:
    return redis_client().register_script(_RELEASE_LUA)


def forget_reader(consumer: str) -> None:
    """Drop a reader that holds nothing any more from the group's bookkeeping."""
    client = redis_client()
    pending = client.xpending_range(STREAM, GROUP, min="-", max="+", count=1, consumername=consumer)
    if not pending:
        client.xgroup_delconsumer(STREAM, GROUP, consumer)


def backlog() -> int:
    """Entries not yet recorded (including ones being recorded now)."""
    return int(redis_client().xlen(STREAM)) if enabled() else 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
