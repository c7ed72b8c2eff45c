"""Keep link tokens out of logs.

Every manage, unsubscribe, reconfirm and confirmation link carries its token in the
path, and the manage and unsubscribe tokens never expire: a log line holding one is a
working key to that person's subscriptions. Request paths reach the logs from Django
("Not Found: /manage/<token>/") and from gunicorn's access log, so both go through
`redact_tokens`, which keeps the route and drops the token.

A path is served the same however its characters are written (`/%6Danage/` is
`/manage/`, since the server decodes percent-escapes before routing), whereas an
access log writes the request line as it came. So a line that holds escapes is
also read decoded, and if a token shows there, the decoded line is logged, redacted.
"""

import logging
import re
from typing import Any
from urllib.parse import unquote

from gunicorn.glogging import Logger

# The segment after these prefixes is a token (see subscriptions/urls.py).
TOKEN_PREFIXES = ("u", "manage", "confirm", "email-change", "reconfirm")
REDACTED = "…"
_PREFIX = "|".join(re.escape(prefix) for prefix in TOKEN_PREFIXES)
_TOKEN_IN_PATH = re.compile(rf"(/(?:{_PREFIX})/)[^/\s?#\"'<>]+")


# Decoding a few times over undoes escapes of escapes (%2575 -> %75 -> u), more than any server does.
_DECODE_ROUNDS = 3


def redact_tokens(text: str) -> str:
    redacted = _TOKEN_IN_PATH.sub(rf"\g<1>{REDACTED}", text)
    decoded = redacted
    for _ in range(_DECODE_ROUNDS):
        if "%" not in decoded:
            break
        decoded = unquote(decoded)
        decoded_redacted = _TOKEN_IN_PATH.sub(rf"\g<1>{REDACTED}", decoded)
        if decoded_redacted != decoded:
            # The escapes hid a token: log the decoded line, with that token gone.
            return redact_tokens(decoded_redacted)
    return redacted


class RedactTokens(logging.Filter):
    """Rewrites each record's message with its tokens removed; the record is always kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Formatting first catches a token however it arrives: in msg, in args, or in an
        # object whose str() is a URL.
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        # A traceback can quote a path too (an exception's message, a URL in a frame).
        # Formatters reuse exc_text when it is set, so set it, redacted, here.
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_tokens(_TRACEBACKS.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_tokens(record.exc_text)
        return True


_TRACEBACKS = logging.Formatter()


class RedactingGunicornLogger(Logger):
    """gunicorn's logger with tokens removed from access lines (path, request line,
    referer, any header or environ atom) and from its error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # setup runs again on a config reload; one filter is enough.
        if not any(isinstance(f, RedactTokens) for f in self.error_log.filters):
            self.error_log.addFilter(RedactTokens())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact_tokens(value) if isinstance(value, str) else value for key, value in atoms.items()}
