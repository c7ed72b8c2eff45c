"""A django-anymail backend that answers like an ESP, including its failures, on demand.

Use as a mailer: MAILERS={"default": {"BACKEND": "tests.support.fake_esp.FakeEspBackend"}}.
Faults are queued per test with `FakeEsp.fail(...)` and raised exactly as anymail's
requests-based backends raise them (an HTTP response with a status code, or a
requests exception as the cause), so the sending engine's fault handling is tested
against the real exception types.
"""

import itertools
import threading
from dataclasses import dataclass, field
from typing import Literal

import requests
from anymail.backends.base import AnymailBaseBackend, BasePayload
from anymail.exceptions import AnymailRequestsAPIError
from anymail.message import AnymailRecipientStatus

FaultKind = Literal[
    "429", "500", "503", "400", "401", "403", "connect_timeout", "read_timeout", "rejected", "failed", "value_error"
]


@dataclass
class Fault:
    kind: FaultKind
    address: str | None
    times: int
    retry_after: str | None = None


@dataclass
class Sent:
    to: str
    delivery_id: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    metadata: dict[str, str]
    esp_message_id: str


@dataclass
class FakeEspState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: list[Sent] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    attempts: int = 0
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.faults.clear()
            self.attempts = 0

    def fail(self, kind: FaultKind, *, address: str | None = None, times: int = 1, retry_after: str | None = None):
        with self.lock:
            self.faults.append(Fault(kind, address, times, retry_after))

    def _next_fault(self, address: str) -> Fault | None:
        with self.lock:
            self.attempts += 1
            for fault in self.faults:
                if fault.times and fault.address in (None, address):
                    fault.times -= 1
                    return fault
        return None


FakeEsp = FakeEspState()


class _Payload(BasePayload):
    def init_payload(self):
        self.recipients: list[str] = []

    def set_from_email(self, email):
        pass

    def add_recipient(self, recipient_type, email):
        self.recipients.append(email.addr_spec)

    def set_subject(self, subject):
        pass

    def set_reply_to(self, emails):
        pass

    def set_extra_headers(self, headers):
        pass

    def set_text_body(self, body):
        pass

    def set_html_body(self, body):
        pass

    def set_metadata(self, metadata):
        pass


def _response(status: int, retry_after: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    reasons = {429: "Too Many Requests", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
    response.reason = reasons.get(status, "Server Error")
    response._content = b'{"message": "fake ESP says no"}'
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def _wrapped(error: requests.RequestException, message, payload) -> AnymailRequestsAPIError:
    # Exactly what AnymailRequestsBackend.post_to_esp raises for a network error.
    error_class = type("AnymailRequestsAPIError", (AnymailRequestsAPIError, type(error)), {})
    wrapped = error_class("Error posting to fake ESP:", email_message=message, payload=payload)
    wrapped.__cause__ = error
    return wrapped


class FakeEspBackend(AnymailBaseBackend):
    esp_name = "Fake"

    def build_message_payload(self, message, defaults):
        return _Payload(message, defaults, self)

    def post_to_esp(self, payload, message):
        address = payload.recipients[0]
        fault = FakeEsp._next_fault(address)
        kind = fault.kind if fault else None
        if kind in ("429", "500", "503", "400", "401", "403"):
            raise AnymailRequestsAPIError(
                email_message=message, payload=payload, response=_response(int(kind), fault.retry_after), backend=self
            )
        if kind == "value_error":
            # What requests raised, before connecting, for ANYMAIL_REQUESTS_TIMEOUT="3" (issue 16).
            raise ValueError("Timeout value connect was 3, but it must be an int, float or None.")
        if kind == "connect_timeout":
            raise _wrapped(requests.ConnectTimeout("connect timed out"), message, payload)
        esp_id = f"fake-{next(FakeEsp.ids)}"
        if kind not in ("rejected", "failed"):
            self._record(message, address, esp_id)
        if kind == "read_timeout":
            # The ESP took the message; only its answer was lost on the way back.
            raise _wrapped(requests.ReadTimeout("read timed out"), message, payload)
        if kind == "failed":  # inside a successful answer, with no id (MailerSend's suppressed address)
            return {address: AnymailRecipientStatus(message_id=None, status="failed")}
        status = "rejected" if kind == "rejected" else "queued"
        return {address: AnymailRecipientStatus(message_id=esp_id, status=status)}

    def parse_recipient_status(self, response, payload, message):
        return response

    def _record(self, message, address: str, esp_id: str) -> None:
        html = next((content for content, mimetype in message.alternatives if mimetype == "text/html"), "")
        sent = Sent(
            to=address,
            # The delivery reference is "<delivery id>.<tag>" (tokens.make_delivery_reference).
            delivery_id=str(message.metadata.get("delivery_ref", "")).partition(".")[0],
            subject=message.subject,
            text=message.body,
            html=html,
            headers=dict(message.extra_headers),
            metadata=dict(message.metadata),
            esp_message_id=esp_id,
        )
        with FakeEsp.lock:
            FakeEsp.sent.append(sent)
