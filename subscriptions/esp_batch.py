"""One ESP API call for many people: anymail batch sending with per-recipient merge data.

Sending a mailing through an ESP's HTTP API one person per call spends a round trip
per person. Where the ESP's anymail integration batch-sends a message written inline
(no template stored at the ESP) with per-recipient `merge_data`, `merge_metadata`
and `merge_headers`, one call carries up to the ESP's cap of people: the body is
rendered once with the ESP's merge fields where each person's first name and links
go, and the values travel as merge data; each person's delivery id travels as merge
metadata (webhooks echo it back for reconciliation), and their List-Unsubscribe,
Message-ID and X-Tidings-Delivery as merge headers.

BATCHING lists the ESPs checked against anymail's own source (django-anymail 15.2,
anymail/backends/<esp>.py) and the ESP's and anymail's documentation; any ESP not
listed keeps one call per person (transports.MessageTransport).

- Mailgun: merge fields `%recipient.KEY%`, usable in the body and in headers
  (anymail maps merge_data to `recipient-variables`, merge_metadata to
  `v:KEY=%recipient.v:KEY%`, merge_headers to `h:Name=%recipient.h:Name%`; see the
  comment block in anymail/backends/mailgun.py and
  https://anymail.dev/en/stable/esps/mailgun/#batch-sending-merge-and-esp-templates).
  At most 1,000 recipients per call
  (https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending).
  Mailgun answers a call with one message id for all its recipients and refuses the
  whole call (HTTP 400) for one unusable address, so a refused call is sent again
  one person at a time to find who.

- SendGrid: with merge_data and no template_id, anymail writes per-personalization
  legacy `substitutions`, each key formatted by `merge_field_format` (set per message
  through esp_extra), merge_metadata as the personalization's `custom_args` and
  merge_headers as its `headers`; it also gives each personalization an
  `anymail_id`, so every person has a message id of their own (anymail/backends/
  sendgrid.py: serialize_data, build_merge_data,
  convert_dynamic_template_data_to_legacy_substitutions). SendGrid substitutes in
  the subject and both content parts, and takes at most 1,000 personalizations per
  call (https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send).
  django-anymail has marked SendGrid unsupported (untested) since 13.0.1.

Left out on purpose, from the same sources: Amazon SES and Postmark (merge_data only
with a stored template), Resend (no merge_data), MailerSend (no metadata at all),
Mandrill (no merge_headers). Brevo, SparkPost, Mailjet, Mailtrap and Unisender Go
take all three in anymail, but run inline content through a template language, so the
mailing's own text would need escaping for each; they stay one call per person.

Whatever a first name contains stays text: the HTML copy takes an HTML-escaped value
(a key of its own) with the merge field's delimiter ("%" or "-") as a character
reference, so nothing in it can read as a merge field, however the ESP substitutes.
The text copy takes the name as it is; neither ESP documents whether substituted
values are searched again, but each call's merge data holds only each person's own
values, so at worst a name written like a merge field shows that person's own link.
People whose addresses meet on the wire are sent apart (merge data is keyed by
address).
"""

import email.utils
import html
from collections.abc import Sequence
from dataclasses import dataclass

from anymail.backends.base import AnymailBaseBackend
from anymail.message import AnymailMessage
from django.core.mail.backends.base import BaseEmailBackend

from subscriptions.bulk_mime import MimeTemplate
from subscriptions.services.compose import Chunks, CompiledMailing, Personal, Slot, clean_first_name
from subscriptions.transports import AnymailCalls, Outcomes, Outgoing, Permanent, SendFault, send_each


@dataclass(frozen=True)
class EspBatching:
    merge_field: str  # the ESP's syntax for a merge field; "{}" is the key
    max_recipients: int
    # For ESPs whose merge fields are plain strings anymail must be told the form of:
    # merge_data keys are written this way in the call (anymail's merge_field_format).
    names_fields: bool = False


# Keyed by anymail's esp_name for the backend.
BATCHING = {
    "Mailgun": EspBatching(merge_field="%recipient.{}%", max_recipients=1000),
    "SendGrid": EspBatching(merge_field="-{}-", max_recipients=1000, names_fields=True),
}


def batching_for(backend: BaseEmailBackend) -> EspBatching | None:
    if not isinstance(backend, AnymailBaseBackend):
        return None
    return BATCHING.get(backend.esp_name)


class MergedBody:
    """A compiled mailing with the ESP's merge fields in its slots, and each person's values for them."""

    def __init__(self, compiled: CompiledMailing, merge_field: str) -> None:
        slots = [chunk for chunk in compiled.text + compiled.html if isinstance(chunk, Slot)]
        defaults = dict.fromkeys(slot.default for slot in slots if slot.kind == "first_name")
        # One key per default, since {{ first_name|default:"…" }} may differ between slots.
        self.name_keys = {default: f"tidings_name{index}" for index, default in enumerate(defaults)}
        self.merge_field = merge_field
        self.delimiter = merge_field[0]  # "%" for Mailgun, "-" for SendGrid
        self.text = self._join(compiled.text, html_part=False)
        self.html = self._join(compiled.html, html_part=True)

    def _key(self, slot: Slot, *, html_part: bool) -> str:
        if slot.kind == "first_name":
            key = self.name_keys[slot.default]
            return f"{key}_html" if html_part else key
        # Links are built from SITE_URL and URL-safe tokens: nothing in them HTML-escapes.
        return f"tidings_{slot.kind}"

    def _join(self, chunks: Chunks, *, html_part: bool) -> str:
        return "".join(
            chunk if isinstance(chunk, str) else self.merge_field.format(self._key(chunk, html_part=html_part))
            for chunk in chunks
        )

    def values(self, personal: Personal) -> dict[str, str]:
        name = clean_first_name(personal.first_name)
        values = {"tidings_unsubscribe_url": personal.unsubscribe_url, "tidings_manage_url": personal.manage_url}
        for default, key in self.name_keys.items():
            values[key] = name or default
            # The merge field's delimiter as a character reference: it shows the same,
            # and no merge field can survive in a name, however the ESP substitutes.
            values[f"{key}_html"] = html.escape(name or default).replace(self.delimiter, f"&#{ord(self.delimiter)};")
        return values


class EspBatchTransport(AnymailCalls):
    def __init__(self, *, backend: BaseEmailBackend, template: MimeTemplate, name: str, batching: EspBatching) -> None:
        super().__init__(backend=backend, template=template, name=name)
        self.max_recipients: int | None = batching.max_recipients
        self.batching = batching
        self.body = MergedBody(template.compiled, batching.merge_field)

    def build(self, items: Sequence[Outgoing]) -> AnymailMessage:
        message = AnymailMessage(
            subject=self.template.compiled.subject,
            body=self.body.text,
            from_email=email.utils.formataddr((self.template.sender_name, self.template.sender)),
            to=[item.recipient.address for item in items],
            headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )
        message.attach_alternative(self.body.html, "text/html")
        # merge_data makes anymail send each "to" address a message of its own.
        message.merge_data = {item.recipient.address: self.body.values(item.recipient.personal) for item in items}
        message.merge_metadata = {
            item.recipient.address: {"delivery_id": str(item.recipient.delivery_id)} for item in items
        }
        message.merge_headers = {
            item.recipient.address: {
                "Message-ID": item.message_id,
                "List-Unsubscribe": self.template.list_unsubscribe(item.recipient.personal),
                "X-Tidings-Delivery": str(item.recipient.delivery_id),
            }
            for item in items
        }
        if self.batching.names_fields:
            message.esp_extra = {"merge_field_format": self.batching.merge_field}
        return message

    def _call(self, items: Sequence[Outgoing]) -> Outcomes:
        """One API call; a fault of the whole call is raised, a refused address is its outcome."""
        message = self.build(items)
        self.hand_over(message)
        return {item.recipient.delivery_id: self.answer_for(message, item) for item in items}

    def _send_alone(self, item: Outgoing) -> str:
        outcome = self._call([item])[item.recipient.delivery_id]
        if isinstance(outcome, SendFault):
            raise outcome
        return outcome

    def send_many(self, items: Sequence[Outgoing]) -> Outcomes:
        if len({item.recipient.address.lower() for item in items}) < len(items):
            # merge_data is keyed by address: two people one address apart only in form
            # (an IDN domain and its punycode) would share values. Send those alone.
            return send_each(self._send_alone, items)
        try:
            return self._call(items)
        except Permanent as fault:
            if len(items) == 1:
                return {items[0].recipient.delivery_id: fault}
            # A whole call refused (one bad address can do that): one at a time finds whom it concerns.
            return send_each(self._send_alone, items)
        except SendFault as fault:
            # Rate limited, transient or ambiguous: the same for everyone in the call.
            return {item.recipient.delivery_id: fault for item in items}
