"""Hand people's copies of a mailing to the mail system, and say plainly how each went.

Four transports. SMTP writes the pre-serialised bytes from bulk_mime over the SMTP
backend's own connection, one MAIL/RCPT/DATA exchange per person, so the per-message
cost is a substitution and a socket write (subscriptions.mail.transports.smtp). An anymail
ESP whose API batch-sends with per-recipient merge data gets one API call for many
people (subscriptions.mail.transports.anymail); Mailjet gets one call carrying many whole messages
(subscriptions.mail.transports.messages).
Every other backend (the remaining anymail ESPs, the demo outbox) gets a per-person
EmailMultiAlternatives built from the compiled content with the delivery id as
anymail metadata.

The engine hands a transport several people at once (`send_many`); the two
one-message-per-call transports loop (`send_each`), stopping at the first fault that
is about the ESP rather than one address, so the engine can wait or retry before
anyone else is tried.

Failures come back as one of five faults, which decide what the sender does next:
RateLimited (wait, then retry the same message), Transient (back off and retry, up to
a limit), Permanent (this address failed, carry on; Refused when the receiving server
refused the address itself at RCPT, which the sender treats as a hard bounce),
Misconfigured (refused for how we are set up: pause the mailing, fail no one) and
Ambiguous (the message may have been accepted: never resend it; webhooks will tell).
"""

import contextlib
import email.utils
import logging
import math
import re
import smtplib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailInvalidAddress, AnymailRecipientsRefused
from celery.exceptions import SoftTimeLimitExceeded
from django.core.mail import EmailMultiAlternatives, mailers
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from subscriptions.mail.mime import MimeTemplate, Recipient

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


@dataclass(frozen=True)
class Outgoing:
    recipient: Recipient
    message_id: str


# Per delivery id: the ESP's message id when sent, else the fault. A delivery missing
# from the answer was not tried, and is safe to send again.
Outcomes = dict[int, str | SendFault]


class Transport(Protocol):
    name: str
    # The most people one send_many call may carry; None when each is a call of its own anyway.
    max_recipients: int | None

    def send_many(self, items: Sequence[Outgoing]) -> Outcomes:
        """Send to these people; say per delivery how it went (see Outcomes)."""
        ...

    def close(self) -> None: ...


def send_each(send: Callable[[Outgoing], str], items: Sequence[Outgoing]) -> Outcomes:
    """One message per call, stopping after a fault that is about the ESP, not the address."""
    outcomes: Outcomes = {}
    for item in items:
        try:
            outcomes[item.recipient.delivery_id] = send(item)
        except (Permanent, Ambiguous) as fault:
            outcomes[item.recipient.delivery_id] = fault
        except (RateLimited, Transient, Misconfigured) as fault:
            outcomes[item.recipient.delivery_id] = fault
            break
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:  # noqa: BLE001 - see unexpected_fault
            # Answered here, not raised, so the people sent before it keep their answers.
            outcomes[item.recipient.delivery_id] = unexpected_fault(error)
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


def transport_for(*, alias: str, template: MimeTemplate) -> Transport:
    # Imported here: these build on this module's faults and Outgoing.
    from subscriptions.mail.transports.anymail import EspBatchTransport, batching_for
    from subscriptions.mail.transports.messages import MessagesBatchTransport, messages_per_call
    from subscriptions.mail.transports.smtp import SmtpTransport

    backend = mailers[alias]
    if isinstance(backend, SmtpBackend):
        return SmtpTransport(backend=backend, template=template, name=alias)
    batching = batching_for(backend)
    if batching is not None:
        return EspBatchTransport(backend=backend, template=template, name=alias, batching=batching)
    per_call = messages_per_call(backend)
    if per_call is not None:
        return MessagesBatchTransport(backend=backend, template=template, name=alias, per_call=per_call)
    return MessageTransport(backend=backend, template=template, name=alias)


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
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's List-Unsubscribe-Post value
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


class AnymailCalls:
    """What every transport over a Django mail backend shares: the backend opened once,
    a message handed over with its failure turned into a SendFault, and the ESP's
    answer for one recipient read back."""

    def __init__(self, *, backend: BaseEmailBackend, template: MimeTemplate, name: str) -> None:
        self.backend = backend
        self.template = template
        self.name = name
        self.opened = False

    def hand_over(self, message: EmailMultiAlternatives) -> None:
        try:
            if not self.opened:
                self.backend.open()
                self.opened = True
            self.backend.send_messages([message])
        except AnymailError as error:
            raise anymail_fault(error) from error
        except smtplib.SMTPAuthenticationError as error:
            raise smtp_fault(error.smtp_code, error.smtp_error, "AUTH") from error
        except (OSError, smtplib.SMTPException) as error:
            raise Transient(str(error)[:200]) from error

    def personal_headers(self, item: Outgoing) -> dict[str, str]:
        """The headers that differ per person: our Message-ID, their List-Unsubscribe, the delivery reference."""
        return {
            "Message-ID": item.message_id,
            "List-Unsubscribe": self.template.list_unsubscribe(item.recipient.personal),
            "X-Tidings-Delivery": item.recipient.reference,
        }

    @staticmethod
    def answer_for(message: EmailMultiAlternatives, item: Outgoing) -> str | SendFault:
        """The ESP's message id for this person (ours when it gives none), or Permanent if refused."""
        status = getattr(message, "anymail_status", None)
        if status is None:  # not an anymail backend (the demo outbox)
            return item.message_id.strip("<>")
        recipient = status.recipients.get(item.recipient.address)
        # "failed" comes inside a successful answer: MailerSend's suppressed address,
        # Mailtrap's success:false, Unisender Go's "temporarily unavailable" (that
        # person misses this one mailing rather than being counted as sent).
        if recipient is not None and recipient.status in ("rejected", "invalid", "failed"):
            return Permanent(f"refused by the ESP ({recipient.status})")
        esp_id = recipient.message_id if recipient is not None else None
        return str(esp_id or status.message_id or item.message_id.strip("<>"))

    def close(self) -> None:
        if self.opened:
            self.backend.close()
            self.opened = False


class MessageTransport(AnymailCalls):
    max_recipients: int | None = None

    def build(self, item: Outgoing) -> EmailMultiAlternatives:
        compiled, personal = self.template.compiled, item.recipient.personal
        message = EmailMultiAlternatives(
            subject=compiled.subject,
            body=compiled.render_text(personal),
            from_email=email.utils.formataddr((self.template.sender_name, self.template.sender)),
            to=[item.recipient.address],
            headers={**self.personal_headers(item), "List-Unsubscribe-Post": ONE_CLICK},
        )
        message.attach_alternative(compiled.render_html(personal), "text/html")
        # django-anymail sends metadata to the ESP, which echoes it in every webhook.
        message.metadata = {DELIVERY_METADATA: item.recipient.reference}  # type: ignore[attr-defined]
        return message

    def send(self, item: Outgoing) -> str:
        message = self.build(item)
        self.hand_over(message)
        answer = self.answer_for(message, item)
        if isinstance(answer, SendFault):
            raise answer
        return answer

    def send_many(self, items: Sequence[Outgoing]) -> Outcomes:
        return send_each(self.send, items)


def backoff_seconds(attempt: int, *, base: float, cap: float = 30.0) -> float:
    return float(min(base * (2**attempt), cap))


def pause(seconds: float) -> None:
    """One place that sleeps, so the waiting is visible in one line of a profile."""
    if seconds > 0:
        time.sleep(seconds)
