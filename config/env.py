"""Typed readers for environment variables that fail loudly on a bad value.

Every setting Tidings reads from the environment goes through these helpers, so a
typo such as ``DEBUG=ture`` or ``SEND_RATE_PER_SECOND=fast`` stops start-up with a
message naming the variable instead of silently running with a default.
"""

import json
import os
from collections.abc import Mapping
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "", *, required: bool = False) -> str:
    value = _raw(name)
    if value:
        return value
    if required:
        raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
    return default


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a boolean (use true or false).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={number} must be at least {minimum}.")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={number} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if not value:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str = "", *, schemes: tuple[str, ...], required: bool = False) -> str:
    value = env_str(name, default, required=required)
    if not value:
        return value
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        allowed = ", ".join(schemes)
        raise ImproperlyConfigured(f"Environment variable {name} must be a URL starting with one of: {allowed}.")
    return value


def env_choice(name: str, default: str, *, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} must be one of: {', '.join(choices)}.")
    return value


# django-anymail's settings that are not strings (anymail/backends/*.py, webhooks/*.py,
# as of 15.2), by the end of their name: an ESP-specific one ("POSTMARK_USE_BULK_API")
# ends like the shared one. Every other ANYMAIL_* value (keys, tokens, domains, URLs)
# stays a string, even one that looks like a number.
_ANYMAIL_BOOLEANS = (
    "IGNORE_UNSUPPORTED_FEATURES",
    "IGNORE_RECIPIENT_STATUS",
    "DEBUG_API_REQUESTS",
    "USE_BULK_API",
    "GENERATE_MESSAGE_ID",
    "WORKAROUND_DISPLAY_NAME_BUGS",
    "PREVENT_HEADER_ENCODING_BUGS",
    "VERIFY_ATTACHMENT_EXTENSIONS",
    "AUTO_CONFIRM_SNS_SUBSCRIPTIONS",
    "TRACK_INITIAL_OPEN_AS_OPENED",
)
_ANYMAIL_INTEGERS = ("_CHUNK_SIZE",)
_ANYMAIL_DICTS = ("SEND_DEFAULTS", "SESSION_PARAMS", "CLIENT_PARAMS")


def _anymail_value(name: str, key: str, value: str) -> object:
    if key.endswith(_ANYMAIL_BOOLEANS):
        if value.lower() not in _TRUE | _FALSE:
            raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a boolean (use true or false).")
        return value.lower() in _TRUE
    if key.endswith(_ANYMAIL_INTEGERS):
        if not value.isascii() or not value.isdigit() or int(value) < 1:
            raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a whole number above 0.")
        return int(value)
    if key == "REQUESTS_TIMEOUT":
        # requests takes seconds, or a (connect, read) pair: "3" or "3.05,27".
        seconds = tuple(_seconds(name, part.strip()) for part in value.split(","))
        if len(seconds) > 2:
            raise ImproperlyConfigured(f"Environment variable {name}={value!r} must be seconds, or connect,read.")
        return seconds[0] if len(seconds) == 1 else seconds
    if key.endswith(_ANYMAIL_DICTS):
        return _json(name, value, dict)
    if key == "WEBHOOK_SECRET" and value.startswith("["):
        # Several "user:password" pairs while the ESP's webhooks move to a new one.
        return _json(name, value, list)
    return value


def _seconds(name: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={text!r} is not a number of seconds.") from None
    if not number > 0:
        raise ImproperlyConfigured(f"Environment variable {name}={number} must be more than 0.")
    return number


def _json(name: str, value: str, kind: type) -> object:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name} is not valid JSON.") from None
    if not isinstance(parsed, kind):
        raise ImproperlyConfigured(f"Environment variable {name} must be a JSON {kind.__name__}.")
    return parsed


def env_anymail(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """django-anymail's settings from every ANYMAIL_<NAME> variable, as anymail's <NAME>,
    each of the type anymail expects: a string would reach it as it is, and fail only
    when mail is sent (ANYMAIL_REQUESTS_TIMEOUT=3 made every send raise ValueError)."""
    environ = os.environ if environ is None else environ
    return {
        name.removeprefix("ANYMAIL_"): _anymail_value(name, name.removeprefix("ANYMAIL_"), value.strip())
        for name, value in environ.items()
        if name.startswith("ANYMAIL_")
    }
