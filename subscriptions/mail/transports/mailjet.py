"""One ESP API call carrying many whole messages, each rendered for its person.

Mailjet's Send API v3.1 takes up to 50 messages per call, each in the call's
`Messages` list with its own `To`, `TextPart`, `HTMLPart`, `Headers` and
`EventPayload` (https://dev.mailjet.com/email/reference/send-emails/ and "Send in
bulk" in its guides). Mailjet reads variables in inline content only with
`TemplateLanguage` on, and documents no way to write a literal "{{" or "{%" in it,
so merge data would put the mailing's own text through a template language it has
no escape for. Each message is therefore rendered here, as for one call per person
(compiled once, only each person's values filled in), and the call carries them
whole: no template language is involved.

anymail's Mailjet backend builds the call from the message and applies `esp_extra`
last with a deep update, in which a list replaces a list (anymail/backends/
mailjet.py, anymail/utils.py update_deep, django-anymail 15.2): `esp_extra`'s
`Messages` becomes the call's, beside anymail's `Globals` (From, Subject), and
anymail reads each address's status and MessageID from Mailjet's answer as usual.
No body or header is given to anymail, so none is set in `Globals` to mix with a
message's own.
"""

import email.utils
import json
from collections.abc import Sequence

from anymail.message import AnymailMessage
from django.core.mail.backends.base import BaseEmailBackend

from subscriptions.mail.mime import MimeTemplate
from subscriptions.mail.transports.anymail import BatchCalls
from subscriptions.mail.transports.base import DELIVERY_METADATA, ONE_CLICK, Outgoing, SendFault

# Keyed by anymail's esp_name: the most messages one call may carry.
MESSAGES_PER_CALL = {"Mailjet": 50}


def messages_per_call(backend: BaseEmailBackend) -> int | None:
    return MESSAGES_PER_CALL.get(getattr(backend, "esp_name", ""))


class MessagesBatchTransport(BatchCalls):
    def __init__(self, *, backend: BaseEmailBackend, template: MimeTemplate, name: str, per_call: int) -> None:
        super().__init__(backend=backend, template=template, name=name)
        self.max_recipients = per_call

    def _message(self, item: Outgoing) -> dict[str, object]:
        compiled, personal = self.template.compiled, item.recipient.personal
        return {
            "To": [{"Email": item.recipient.address}],
            "TextPart": compiled.render_text(personal),
            "HTMLPart": compiled.render_html(personal),
            "Headers": {**self.personal_headers(item), "List-Unsubscribe-Post": ONE_CLICK},
            # anymail's Mailjet webhooks read metadata back from this JSON.
            "EventPayload": json.dumps({DELIVERY_METADATA: item.recipient.reference}),
        }

    def _answer(self, message: AnymailMessage, item: Outgoing) -> str | SendFault:
        statuses = message.anymail_status.recipients
        status = statuses.get(item.recipient.address)
        if status is None or status.status != "failed":
            return super()._answer(message, item)
        # anymail calls "failed" each address that Mailjet's answer does not list as
        # sent, matched exactly; one listed in another case was sent all the same.
        wanted = item.recipient.address.lower()
        for address, other in statuses.items():
            if address.lower() == wanted and other.status != "failed" and other.message_id:
                return str(other.message_id)
        return super()._answer(message, item)  # a refusal

    def build(self, items: Sequence[Outgoing]) -> AnymailMessage:
        message = AnymailMessage(
            subject=self.template.compiled.subject,
            body="",
            from_email=email.utils.formataddr((self.template.sender_name, self.template.sender)),
            to=[item.recipient.address for item in items],
        )
        message.esp_extra = {"Messages": [self._message(item) for item in items]}
        return message
