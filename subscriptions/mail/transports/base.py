"""What every transport shares: the Transport protocol (given each person's
mail.letter.Copy, answering with Outcomes), and the faults a send can end in, with how an
SMTP reply or an anymail error becomes one. Which transport a mailer gets is
transports.choose's to say.

The fault decides what the sender does next: RateLimited (wait, then retry the same
message), Transient (back off and retry, up to a limit), Permanent (this address
failed, carry on; Refused when the receiving server refused the address itself at
RCPT, a hard bounce), Misconfigured (refused for how we are set up: pause the mailing,
fail no one) and Ambiguous (the message may have been accepted: never resend it;
webhooks will tell). Why: docs/adr/0003-at-most-once-sending-and-unknown.md.
"""

import contextlib
import email.utils
import logging
import math
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailInvalidAddress, AnymailRecipientsRefused
from celery.exceptions import SoftTimeLimitExceeded

from subscriptions.mail.letter import Copy

logger = logging.getLogger(__name__)

# The metadata key under which every bulk message gives the ESP its delivery reference
# (tokens.make_delivery_reference); webhooks echo it back (services.webhooks).
DELIVERY_METADATA = "delivery_ref"


class SendFault(Exception):
    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class RateLimited(SendFault):
    """The ESP asked us to slow down (HTTP 429)."""


class Transient(SendFault):
    """Not accepted this time (5xx, SMTP 4xx, no connection); safe to try again."""


class Permanent(SendFault):
    """Refused for good for this address (HTTP 4xx, SMTP 5xx)."""


class Refused(Permanent):
    """The receiving server refused the address itself for good (SMTP 5xx at RCPT with
    an enhanced status of a bad address, 5.1.x or 5.2.1): a hard bounce."""


class Misconfigured(SendFault):
    """Refused for how we are set up, not for whom: the ESP refusing our API key or
    sender (HTTP 401/403), the SMTP server refusing our login or our sender, or an
    exception of our own making. Every message would meet it, so the mailing pauses
    and nobody is failed (services.sending)."""


class Ambiguous(SendFault):
    """The connection failed after the message was handed over: it may have been accepted."""


# Per delivery id: the ESP's message id when sent, else the fault. A delivery missing
# from the answer was not tried, and is safe to send again.
Outcomes = dict[int, str | SendFault]


class Transport(Protocol):
    name: str
    # The most people one send_many call may carry; None when each is a call of its own anyway.
    max_recipients: int | None

    def send_many(self, items: Sequence[Copy]) -> Outcomes:
        """Send to these people; say per delivery how it went (see Outcomes)."""
        ...

    def close(self) -> None: ...


def send_each(send: Callable[[Copy], str], items: Sequence[Copy]) -> Outcomes:
    """One message per call, stopping after a fault that is about the ESP, not the address."""
    outcomes: Outcomes = {}
    for item in items:
        try:
            outcomes[item.delivery_id] = send(item)
        except (Permanent, Ambiguous) as fault:
            outcomes[item.delivery_id] = fault
        except (RateLimited, Transient, Misconfigured) as fault:
            outcomes[item.delivery_id] = fault
            break
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:  # noqa: BLE001 - see unexpected_fault
            # Answered here, not raised, so the people sent before it keep their answers.
            outcomes[item.delivery_id] = unexpected_fault(error)
            break
    return outcomes


# Anything shaped like an address, for text that goes where no address may (a log line,
# the mailing page, the audit trail): an exception's message can quote one.
_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"']+@[^\s<>()\[\]\\,;:\"']+")


def without_addresses(text: str) -> str:
    return _ADDRESS.sub("<address>", text)


def unexpected_fault(error: Exception) -> Misconfigured:
    """An exception from a send that is no SendFault: a bad mailer option (issue 16's
    ANYMAIL_REQUESTS_TIMEOUT="3" made requests raise ValueError) or a bug of ours. It
    is logged with its traceback (without addresses) and pauses the mailing."""
    reason = without_addresses(f"{type(error).__name__}: {error}".splitlines()[0])[:200]
    trace = without_addresses("".join(traceback.format_exception(error)))
    logger.error("sending raised %s; the mailing pauses\n%s", type(error).__name__, trace.rstrip())
    return Misconfigured(reason)


_ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
# Enhanced status codes (RFC 3463) that say the address itself is bad: no such mailbox
# or domain, a mailbox disabled. Not 5.1.7/5.1.8 (our sender) nor 5.7.x (policy: a
# relay refusing us, a blocklist), which would otherwise withdraw everyone it refused.
_BAD_ADDRESS = re.compile(r"^5\.1\.(?!7$|8$)\d+$|^5\.2\.1$")


def smtp_fault(code: int, reply: bytes | str, stage: str) -> SendFault:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    if code == 530 or (stage in ("AUTH", "MAIL") and 500 <= code < 600):
        # 530 is "log in first" wherever it comes; a refused login, or a refusal of our
        # sender at MAIL (the same in every message), would refuse everyone alike.
        said = "" if stage == "RCPT" else f": {without_addresses(text)}"  # RCPT replies quote the address
        what = "our login" if code in (530, 535) or stage == "AUTH" else "our sender"
        return Misconfigured(f"the mail server refused {what} (SMTP {code} at {stage}{said})"[:200])
    if stage == "RCPT":
        # The code and enhanced status only: a server's reply text here quotes the
        # address more often than not, and the reason is stored and logged.
        found = _ENHANCED_STATUS.match(text)
        status = found.group(1) if found else ""
        reason = f"SMTP {code} at RCPT" + (f" ({status})" if status else "")
        if not 500 <= code < 600:
            return Transient(reason)
        return Refused(reason) if _BAD_ADDRESS.match(status) else Permanent(reason)
    reason = f"SMTP {code} at {stage}: {text}"[:200]
    return Permanent(reason) if 500 <= code < 600 else Transient(reason)


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """Retry-After as delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


# The longest wait a 429 may ask for: beyond it, a malformed or absurd header (a reset
# time in milliseconds, "inf") must not park every worker for days.
MAX_RATE_LIMIT_WAIT = 3600.0
QUOTA_WAIT = 600.0


def rate_limit_wait(headers: Mapping[str, str]) -> float:
    """Seconds a 429 asks us to wait: Retry-After, or SendGrid's X-RateLimit-Reset (the
    Unix time its window resets), else the default; never more than an hour."""
    wait = retry_after_seconds(headers.get("Retry-After"))
    if headers.get("Retry-After") is None and (reset := headers.get("X-RateLimit-Reset")):
        with contextlib.suppress(ValueError):
            wait = float(reset) - time.time()
    return min(max(wait, 0.0), MAX_RATE_LIMIT_WAIT) if math.isfinite(wait) else 1.0


def _caused_by(error: BaseException, *types: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, types):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def anymail_fault(error: AnymailError) -> SendFault:
    reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    if isinstance(error, AnymailRecipientsRefused | AnymailInvalidAddress):
        return Permanent(reason)
    status = getattr(error, "status_code", None)
    if status in (401, 403):
        # A wrong or revoked API key, a key without permission to send, an unverified
        # sender: about our account, so every other message would meet it too.
        return Misconfigured(_refused_us(status, getattr(error, "response", None)))
    if status == 429:
        headers = getattr(getattr(error, "response", None), "headers", None) or {}
        return RateLimited(reason, retry_after=rate_limit_wait(headers))
    if status == 420:
        # SparkPost's "sending limit exceeded" (an hourly or daily quota): nothing was
        # sent, and no address is at fault. Every worker pauses ten minutes, as for a
        # long 429: the batch goes back to the queue and is tried again after.
        return RateLimited(reason, retry_after=QUOTA_WAIT)
    if status is not None and 200 <= status < 300:
        # The ESP took the request but anymail could not read its answer: it may have
        # accepted the message (every recipient of a batch call), so never resend.
        return Ambiguous(reason)
    if status is not None:
        return Transient(reason) if status >= 500 else Permanent(reason)
    # No HTTP answer. Failing to connect is safe to retry; losing the answer is not.
    if _caused_by(error, requests.ConnectTimeout, ConnectionRefusedError):
        return Transient(reason)
    if isinstance(error, AnymailAPIError) and not _caused_by(error, requests.RequestException, OSError):
        return Transient(reason)
    return Ambiguous(reason)


def _refused_us(status: int, response: requests.Response | None) -> str:
    """Why the ESP refused us, with the start of what it said ("API key revoked", the
    sender it wants verified), any address in it taken out."""
    what = "our credentials" if status == 401 else "to send for us"
    said = " ".join((getattr(response, "text", "") or "").split())[:120]
    return f"the email provider refused {what} (HTTP {status})" + (f": {without_addresses(said)}" if said else "")
