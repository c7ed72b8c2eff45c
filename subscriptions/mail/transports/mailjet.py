"""One Mailjet API call carrying many whole messages, each rendered for its person
(MailjetBatchTransport): Send API v3.1 takes up to 50 per call, each in the call's
`Messages` list with its own To, TextPart, HTMLPart, Headers and EventPayload, given to
anymail as `esp_extra` (which replaces the list anymail would build). No template
language is involved, since Mailjet documents no escape for one. Why:
docs/adr/0009-esp-batch-sending.md.
"""

import json
from collections.abc import Sequence

from anymail.message import AnymailMessage
from django.core.mail.backends.base import BaseEmailBackend

from subscriptions.mail.letter import Copy, Letter
from subscriptions.mail.transports.anymail import BatchCalls
from subscriptions.mail.transports.base import DELIVERY_METADATA, SendFault

# Keyed by anymail's esp_name: the most messages one call may carry.
MESSAGES_PER_CALL = {"Mailjet": 50}


def messages_per_call(backend: BaseEmailBackend) -> int | None:
    return MESSAGES_PER_CALL.get(getattr(backend, "esp_name", ""))


class MailjetBatchTransport(BatchCalls):
    def __init__(self, *, backend: BaseEmailBackend, letter: Letter, name: str, per_call: int) -> None:
        super().__init__(backend=backend, letter=letter, name=name)
        self.max_recipients = per_call

    def _message(self, item: Copy) -> dict[str, object]:
        compiled = self.letter.compiled
        return {
            "To": [{"Email": item.address}],
            "TextPart": compiled.render_text(item),
            "HTMLPart": compiled.render_html(item),
            "Headers": self.headers(item),
            # anymail's Mailjet webhooks read metadata back from this JSON.
            "EventPayload": json.dumps({DELIVERY_METADATA: item.reference}),
        }

    def _answer(self, message: AnymailMessage, item: Copy) -> str | SendFault:
        statuses = message.anymail_status.recipients
        status = statuses.get(item.address)
        if status is None or status.status != "failed":
            return super()._answer(message, item)
        # anymail calls "failed" each address that Mailjet's answer does not list as
        # sent, matched exactly; one listed in another case was sent all the same.
        wanted = item.address.lower()
        for address, other in statuses.items():
            if address.lower() == wanted and other.status != "failed" and other.message_id:
                return str(other.message_id)
        return super()._answer(message, item)  # a refusal

    def build(self, items: Sequence[Copy]) -> AnymailMessage:
        message = AnymailMessage(
            subject=self.letter.compiled.subject,
            body="",
            from_email=self.letter.from_header,
            to=[item.address for item in items],
        )
        # No body or header is given to anymail, so none is set in Globals to mix with a message's own.
        message.esp_extra = {"Messages": [self._message(item) for item in items]}
        return message
