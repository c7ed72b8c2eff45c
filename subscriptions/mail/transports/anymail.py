"""Sending through a Django mail backend (anymail's ESPs, the demo outbox): what every
such transport shares (AnymailCalls), one message per person (MessageTransport), and
many people in one API call (BatchCalls, built on by transports.merge and
transports.mailjet). Why an ESP gets one kind or the other: docs/adr/0009-esp-batch-sending.md.
"""

import smtplib
from collections.abc import Sequence

from anymail.exceptions import AnymailError
from anymail.message import AnymailMessage
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend

from subscriptions.mail.headers import ONE_CLICK_POST
from subscriptions.mail.letter import Copy, Letter
from subscriptions.mail.transports.base import (
    DELIVERY_METADATA,
    Ambiguous,
    Outcomes,
    Permanent,
    SendFault,
    Transient,
    anymail_fault,
    send_each,
    smtp_fault,
)


class AnymailCalls:
    """What every transport over a Django mail backend shares: the backend opened once,
    a message handed over with its failure turned into a SendFault, and the ESP's
    answer for one recipient read back."""

    def __init__(self, *, backend: BaseEmailBackend, letter: Letter, name: str) -> None:
        self.backend = backend
        self.letter = letter
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

    def personal_headers(self, item: Copy) -> dict[str, str]:
        """The headers that differ per person: our Message-ID, their List-Unsubscribe, the delivery reference."""
        return {
            "Message-ID": item.message_id,
            **self.letter.list_unsubscribe(item),
            "X-Tidings-Delivery": item.reference,
        }

    def headers(self, item: Copy) -> dict[str, str]:
        """All of one person's headers, for a message that goes to them alone."""
        return {**self.personal_headers(item), **ONE_CLICK_POST}

    @staticmethod
    def answer_for(message: EmailMultiAlternatives, item: Copy) -> str | SendFault:
        """The ESP's message id for this person (ours when it gives none), or Permanent if refused."""
        status = getattr(message, "anymail_status", None)
        if status is None:  # not an anymail backend (the demo outbox)
            return item.message_id.strip("<>")
        recipient = status.recipients.get(item.address)
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
    """One call per person, the whole message rendered for them: for every backend that
    has no batch transport (most ESPs, the demo outbox)."""

    max_recipients: int | None = None

    def build(self, item: Copy) -> EmailMultiAlternatives:
        compiled = self.letter.compiled
        message = EmailMultiAlternatives(
            subject=compiled.subject,
            body=compiled.render_text(item),
            from_email=self.letter.from_header,
            to=[item.address],
            headers=self.headers(item),
        )
        message.attach_alternative(compiled.render_html(item), "text/html")
        # django-anymail sends metadata to the ESP, which echoes it in every webhook.
        message.metadata = {DELIVERY_METADATA: item.reference}  # type: ignore[attr-defined]
        return message

    def send(self, item: Copy) -> str:
        message = self.build(item)
        self.hand_over(message)
        answer = self.answer_for(message, item)
        if isinstance(answer, SendFault):
            raise answer
        return answer

    def send_many(self, items: Sequence[Copy]) -> Outcomes:
        return send_each(self.send, items)


class BatchCalls(AnymailCalls):
    """A transport that hands the ESP many people's messages in one API call (`build`),
    and reads each person's outcome from anymail's answer."""

    max_recipients: int | None

    def build(self, items: Sequence[Copy]) -> AnymailMessage:
        raise NotImplementedError

    def _call(self, items: Sequence[Copy]) -> Outcomes:
        """One API call; a fault of the whole call is raised, a refused address is its outcome."""
        message = self.build(items)
        self.hand_over(message)
        return {item.delivery_id: self._answer(message, item) for item in items}

    def _answer(self, message: AnymailMessage, item: Copy) -> str | SendFault:
        status = message.anymail_status.recipients.get(item.address)
        if status is not None and status.status == "unknown":
            # SparkPost answers "accepted N of M" for the whole call: who was not is
            # unknown, so nobody in it is sent again; webhooks settle each one.
            return Ambiguous("the ESP accepted only part of the call")
        return self.answer_for(message, item)

    def _send_alone(self, item: Copy) -> str:
        outcome = self._call([item])[item.delivery_id]
        if isinstance(outcome, SendFault):
            raise outcome
        return outcome

    def send_many(self, items: Sequence[Copy]) -> Outcomes:
        if len({item.address.lower() for item in items}) < len(items):
            # merge_data is keyed by address: two people one address apart only in form
            # (an IDN domain and its punycode) would share values. Send those alone.
            return send_each(self._send_alone, items)
        try:
            return self._call(items)
        except Permanent as fault:
            if len(items) == 1:
                return {items[0].delivery_id: fault}
            # A whole call refused (one bad address can do that): one at a time finds whom it concerns.
            return send_each(self._send_alone, items)
        except SendFault as fault:
            # Rate limited, transient or ambiguous: the same for everyone in the call.
            return {item.delivery_id: fault for item in items}
