"""One ESP API call for many people: anymail batch sending with per-recipient merge data.

Sending a mailing through an ESP's HTTP API one person per call spends a round trip
per person. Where the ESP's anymail integration batch-sends a message written inline
(no template stored at the ESP) with per-recipient `merge_data`, `merge_metadata`
and `merge_headers`, one call carries up to the ESP's cap of people: the body is
rendered once with the ESP's merge fields where each person's first name and links
go, and the values travel as merge data; each person's delivery reference travels as merge
metadata (webhooks echo it back for reconciliation), and their List-Unsubscribe,
Message-ID and X-Tidings-Delivery as merge headers.

BATCHING lists the ESPs checked against anymail's own source (django-anymail 15.2,
anymail/backends/<esp>.py) and the ESP's and anymail's documentation; an ESP listed
nowhere (here or in esp_messages) keeps one call per person
(transports.MessageTransport).

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

- SparkPost: anymail puts merge_data in each recipient's `substitution_data`,
  merge_metadata in its `metadata`, and merge_headers behind `{{Header__Name}}`
  fields in the content's headers (anymail/backends/sparkpost.py). SparkPost runs
  all inline content (from, subject, text, html, headers) through its template
  language, so every brace of the mailing's own text (and of its From) is written as
  a merge field whose value is that brace (subscriptions.mail.transports.sparkpost, with the values
  as merge_global_data); merge fields are `{{{key}}}`, which neither HTML-escapes nor
  URL-encodes, and substituted values are not read as template code again
  (https://developers.sparkpost.com/api/template-language/). SparkPost answers a
  call with one transmission id and counts of accepted and rejected recipients, not
  who; anymail reports "unknown" for all when some were rejected, and then nobody
  in the call is sent again (webhooks settle each one). There is no documented cap
  per call (SparkPost suggests 2,000 to 10,000 for bulk); 1,000 here, as for the
  others. SparkPost replaces a custom List-Unsubscribe header with its own, on every
  path (anymail's SparkPost docs, "Extra header limitations").

Mailjet carries whole rendered messages instead (subscriptions.mail.transports.messages).

Left out on purpose, with the reason from the same sources (each keeps one call per
person):
- Amazon SES and Postmark: merge_data only with a template stored at the ESP.
- Resend: no merge_data; MailerSend: no metadata; Mandrill: no merge_headers.
- Brevo: inline content goes through a Django-like template language that
  autoescapes and has no documented way to show "{{" but a verbatim block, and a
  public bug-bounty report (betagouv PR #2381) found expressions inside param
  values evaluated, so a first name could run as template code; anymail also
  rebuilds messageVersions itself, so whole rendered messages cannot be given.
- Mailtrap: template_variables fill only stored templates (template_uuid), not
  inline text/html, and anymail builds each batch request itself, so whole
  rendered messages cannot be given either.
- Unisender Go: anymail's merge_headers take List-Unsubscribe only (its backend
  refuses any other header), so a batch could not give each person our Message-ID
  and X-Tidings-Delivery.

Whatever a first name contains stays text: the HTML copy takes an HTML-escaped value
(a key of its own) with the merge field's first character ("%", "-" or "{") as a
character reference, so nothing in it can read as a merge field, however the ESP
substitutes. The text copy takes the name as it is; Mailgun and SendGrid do not
document whether substituted values are searched again (SparkPost says they are
not), but each call's merge data holds only each person's own values, so at worst a
name written like a merge field shows that person's own link.
People whose addresses meet on the wire are sent apart (merge data is keyed by
address).
"""

import dataclasses
import email.utils
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from anymail.backends.base import AnymailBaseBackend
from anymail.message import AnymailMessage
from django.core.mail.backends.base import BaseEmailBackend

from subscriptions.mail.mime import MimeTemplate
from subscriptions.mail.render import Chunks, CompiledMailing, Personal, Slot, clean_first_name
from subscriptions.mail.transports import sparkpost
from subscriptions.mail.transports.base import (
    DELIVERY_METADATA,
    ONE_CLICK,
    Ambiguous,
    AnymailCalls,
    Outcomes,
    Outgoing,
    Permanent,
    SendFault,
    send_each,
)


def _as_is(text: str) -> str:
    return text


@dataclass(frozen=True)
class EspBatching:
    field: tuple[str, str]  # how the ESP writes a merge field: what goes before and after its key
    max_recipients: int
    # For ESPs whose merge fields are plain strings anymail must be told the form of:
    # merge_data keys are written this way in the call (anymail's merge_field_format).
    names_fields: bool = False
    # For ESPs that read all inline content as a template: the mailing's own text,
    # written so that it shows as it is, and the values that writing relies on
    # (merge_global_data, the same for everyone in the call).
    literal: Callable[[str], str] = _as_is
    global_values: Mapping[str, str] = dataclasses.field(default_factory=dict)


# Keyed by anymail's esp_name for the backend.
BATCHING = {
    "Mailgun": EspBatching(field=("%recipient.", "%"), max_recipients=1000),
    "SendGrid": EspBatching(field=("-", "-"), max_recipients=1000, names_fields=True),
    # Triple braces: the value goes in as it is (html-escaped by us where it must be),
    # neither html-escaped nor URL-encoded again by SparkPost.
    sparkpost.ESP_NAME: EspBatching(
        field=("{{{", "}}}"), max_recipients=1000, literal=sparkpost.literal, global_values=sparkpost.BRACES
    ),
}


def batching_for(backend: BaseEmailBackend) -> EspBatching | None:
    if not isinstance(backend, AnymailBaseBackend):
        return None
    return BATCHING.get(backend.esp_name)


class MergedBody:
    """A compiled mailing with the ESP's merge fields in its slots, and each person's values for them."""

    def __init__(self, compiled: CompiledMailing, batching: EspBatching) -> None:
        slots = [chunk for chunk in compiled.text + compiled.html if isinstance(chunk, Slot)]
        defaults = dict.fromkeys(slot.default for slot in slots if slot.kind == "first_name")
        # One key per default, since {{ first_name|default:"…" }} may differ between slots.
        self.name_keys = {default: f"tidings_name{index}" for index, default in enumerate(defaults)}
        self.batching = batching
        self.delimiter = batching.field[0][0]  # "%" for Mailgun, "-" for SendGrid, "{" for SparkPost
        self.subject = batching.literal(compiled.subject)
        self.text = self._join(compiled.text, html_part=False)
        self.html = self._join(compiled.html, html_part=True)

    def _key(self, slot: Slot, *, html_part: bool) -> str:
        if slot.kind == "first_name":
            key = self.name_keys[slot.default]
            return f"{key}_html" if html_part else key
        # Links are built from SITE_URL and URL-safe tokens: nothing in them HTML-escapes.
        return f"tidings_{slot.kind}"

    def _join(self, chunks: Chunks, *, html_part: bool) -> str:
        opening, closing = self.batching.field
        return "".join(
            self.batching.literal(chunk)
            if isinstance(chunk, str)
            else f"{opening}{self._key(chunk, html_part=html_part)}{closing}"
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


class BatchCalls(AnymailCalls):
    """A transport that hands the ESP many people's messages in one API call (`build`),
    and reads each person's outcome from anymail's answer."""

    max_recipients: int | None

    def build(self, items: Sequence[Outgoing]) -> AnymailMessage:
        raise NotImplementedError

    def _call(self, items: Sequence[Outgoing]) -> Outcomes:
        """One API call; a fault of the whole call is raised, a refused address is its outcome."""
        message = self.build(items)
        self.hand_over(message)
        return {item.recipient.delivery_id: self._answer(message, item) for item in items}

    def _answer(self, message: AnymailMessage, item: Outgoing) -> str | SendFault:
        status = message.anymail_status.recipients.get(item.recipient.address)
        if status is not None and status.status == "unknown":
            # SparkPost answers "accepted N of M" for the whole call: who was not is
            # unknown, so nobody in it is sent again; webhooks settle each one.
            return Ambiguous("the ESP accepted only part of the call")
        return self.answer_for(message, item)

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


class EspBatchTransport(BatchCalls):
    """One call for many people: the body once, with merge fields, and each person's values as merge data."""

    def __init__(self, *, backend: BaseEmailBackend, template: MimeTemplate, name: str, batching: EspBatching) -> None:
        super().__init__(backend=backend, template=template, name=name)
        self.max_recipients: int | None = batching.max_recipients
        self.batching = batching
        self.body = MergedBody(template.compiled, batching)
        self.from_email = batching.literal(email.utils.formataddr((template.sender_name, template.sender)))

    def build(self, items: Sequence[Outgoing]) -> AnymailMessage:
        message = AnymailMessage(
            subject=self.body.subject,
            body=self.body.text,
            from_email=self.from_email,
            to=[item.recipient.address for item in items],
            headers={"List-Unsubscribe-Post": ONE_CLICK},
        )
        message.attach_alternative(self.body.html, "text/html")
        # merge_data makes anymail send each "to" address a message of its own.
        message.merge_data = {item.recipient.address: self.body.values(item.recipient.personal) for item in items}
        if self.batching.global_values:
            message.merge_global_data = dict(self.batching.global_values)
        message.merge_metadata = {
            item.recipient.address: {DELIVERY_METADATA: item.recipient.reference} for item in items
        }
        message.merge_headers = {item.recipient.address: self.personal_headers(item) for item in items}
        if self.batching.names_fields:
            opening, closing = self.batching.field
            message.esp_extra = {"merge_field_format": f"{opening}{{}}{closing}"}
        return message
