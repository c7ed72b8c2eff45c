"""One ESP API call for many people, through anymail's batch sending with per-recipient
merge data (Mailgun, SendGrid, SparkPost): the body rendered once with the ESP's merge
fields where each person's first name and links go (MergedBody), each person's values
as merge data, their delivery reference as merge metadata, and their List-Unsubscribe,
Message-ID and X-Tidings-Delivery as merge headers (MergeBatchTransport).

Whatever a first name contains stays text: the HTML copy takes an HTML-escaped value
with the merge field's first character as a character reference, so nothing in it can
read as a merge field. People whose addresses meet on the wire are sent apart (merge
data is keyed by address; see BatchCalls). Why, and why not other ESPs:
docs/adr/0009-esp-batch-sending.md.
"""

import dataclasses
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from anymail.backends.base import AnymailBaseBackend
from anymail.message import AnymailMessage
from django.core.mail.backends.base import BaseEmailBackend

from subscriptions.mail.headers import ONE_CLICK_POST
from subscriptions.mail.letter import Copy, Letter
from subscriptions.mail.render import Chunks, CompiledMailing, PersonalValues, Slot, clean_first_name
from subscriptions.mail.transports import sparkpost
from subscriptions.mail.transports.anymail import BatchCalls
from subscriptions.mail.transports.base import DELIVERY_METADATA


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


# Keyed by anymail's esp_name for the backend: the ESPs checked against anymail's own
# source and the ESP's documentation (docs/adr/0009-esp-batch-sending.md says what was
# checked, and why each ESP left out keeps one call per person).
BATCHING = {
    # Mailgun answers one message id for the whole call, and refuses the whole call for
    # one unusable address (BatchCalls then sends one at a time to find whom).
    "Mailgun": EspBatching(field=("%recipient.", "%"), max_recipients=1000),
    # SendGrid's legacy substitutions; anymail gives each person a message id of their own.
    "SendGrid": EspBatching(field=("-", "-"), max_recipients=1000, names_fields=True),
    # SparkPost reads all inline content as a template (transports.sparkpost). Triple
    # braces: the value goes in as it is (html-escaped by us where it must be),
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

    def values(self, personal: PersonalValues) -> dict[str, str]:
        name = clean_first_name(personal.first_name)
        values = {"tidings_unsubscribe_url": personal.unsubscribe_url, "tidings_manage_url": personal.manage_url}
        for default, key in self.name_keys.items():
            values[key] = name or default
            # The merge field's delimiter as a character reference: it shows the same,
            # and no merge field can survive in a name, however the ESP substitutes.
            values[f"{key}_html"] = html.escape(name or default).replace(self.delimiter, f"&#{ord(self.delimiter)};")
        return values


class MergeBatchTransport(BatchCalls):
    """One call for many people: the body once, with merge fields, and each person's values as merge data."""

    def __init__(self, *, backend: BaseEmailBackend, letter: Letter, name: str, batching: EspBatching) -> None:
        super().__init__(backend=backend, letter=letter, name=name)
        self.max_recipients: int | None = batching.max_recipients
        self.batching = batching
        self.body = MergedBody(letter.compiled, batching)
        self.from_email = batching.literal(letter.from_header)

    def build(self, items: Sequence[Copy]) -> AnymailMessage:
        message = AnymailMessage(
            subject=self.body.subject,
            body=self.body.text,
            from_email=self.from_email,
            to=[item.address for item in items],
            headers=dict(ONE_CLICK_POST),
        )
        message.attach_alternative(self.body.html, "text/html")
        # merge_data makes anymail send each "to" address a message of its own.
        message.merge_data = {item.address: self.body.values(item) for item in items}
        if self.batching.global_values:
            message.merge_global_data = dict(self.batching.global_values)
        message.merge_metadata = {item.address: {DELIVERY_METADATA: item.reference} for item in items}
        message.merge_headers = {item.address: self.personal_headers(item) for item in items}
        if self.batching.names_fields:
            opening, closing = self.batching.field
            message.esp_extra = {"merge_field_format": f"{opening}{{}}{closing}"}
        return message
