"""A mailing as pre-serialised MIME (MimeTemplate): the headers and MIME structure shared
by every copy are encoded once per mailing, and per person only what differs is joined
on (To, Date, Message-ID, X-Tidings-Delivery, List-Unsubscribe, the two filled parts,
base64-encoded). Personal values never enter a header unchecked: the To address must be
plain ASCII without line breaks (envelope_address), and the links are URL-safe by
construction. Why: docs/adr/0008-pre-serialised-bulk-mime.md.
"""

import base64
import re
import secrets
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate
from functools import cached_property

from django.utils.encoding import punycode

from subscriptions.mail.headers import ONE_CLICK_POST, from_header, list_unsubscribe, list_unsubscribe_mailto
from subscriptions.mail.render import CompiledMailing, Personal
from subscriptions.models import Campaign
from subscriptions.tokens import make_delivery_reference

CRLF = b"\r\n"
_PLAIN_ADDRESS = re.compile(r"^[!#-'*+\-/-9=?A-Z^-~.]+@[A-Za-z0-9.\-]+$")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class UnsendableAddress(ValueError):
    """An address that cannot go into a header as it is (line breaks, non-ASCII local part)."""


def envelope_address(address: str) -> str:
    """The address as SMTP and the To header take it: IDNA domain, nothing else changed."""
    local, _, domain = address.strip().rpartition("@")
    try:
        ascii_address = f"{local}@{punycode(domain)}"
    except UnicodeError:
        raise UnsendableAddress("the domain cannot be encoded") from None
    if not _PLAIN_ADDRESS.match(ascii_address):
        raise UnsendableAddress("the address is not plain ASCII")
    return ascii_address


class UnsafeHeader(ValueError):
    """A header value with a line break, which would end the header and start another."""


def _header(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value:
        raise UnsafeHeader(f"the {name} header contains a line break")
    if value.isascii():
        return f"{name}: {value}".encode("ascii") + CRLF
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode("ascii") + CRLF


def _base64_lines(text: str) -> bytes:
    # encodebytes wraps at 76 characters with LF; SMTP wants CRLF.
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", CRLF)


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    address: str  # already passed through envelope_address
    personal: Personal

    @cached_property
    def reference(self) -> str:
        """What the message names its delivery by (header and ESP metadata): unguessable."""
        return make_delivery_reference(self.delivery_id)


class MimeTemplate:
    """One mailing's bytes, ready to be stamped per person."""

    def __init__(self, *, compiled: CompiledMailing, campaign: Campaign) -> None:
        self.compiled = compiled
        self.domain = campaign.sender_domain
        self.sender = campaign.sender_email
        self.from_header = from_header(campaign)
        self.list_mailto = list_unsubscribe_mailto(campaign)
        boundary = f"=_tidings_{secrets.token_hex(12)}"  # "_" is outside base64's alphabet
        self.head = b"".join(
            [
                _header("From", self.from_header),
                _header("Subject", compiled.subject),
                *(_header(name, value) for name, value in ONE_CLICK_POST.items()),
                b"MIME-Version: 1.0" + CRLF,
            ]
        )
        self.text_open = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        ).encode("ascii")
        self.html_open = (
            f'--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        ).encode("ascii")
        self.close = f"--{boundary}--\r\n".encode("ascii")

    def message_id(self, delivery_id: int) -> str:
        return f"<{delivery_id}.{secrets.token_hex(8)}@{self.domain}>"

    def list_unsubscribe(self, personal: Personal) -> dict[str, str]:
        """This person's List-Unsubscribe header; List-Unsubscribe-Post is in the shared head."""
        return list_unsubscribe(unsubscribe_url=personal.unsubscribe_url, mailto=self.list_mailto)

    def as_bytes(self, recipient: Recipient, *, message_id: str, date: str | None = None) -> bytes:
        """The whole message for one person, CRLF line endings, dot-stuffed-safe."""
        personal = recipient.personal
        per_person = (
            f"To: {recipient.address}\r\n"
            f"Date: {date or formatdate(localtime=False, usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"X-Tidings-Delivery: {recipient.reference}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in self.list_unsubscribe(personal).items())
        ).encode("ascii")
        return b"".join(
            [
                per_person,
                self.head,
                self.text_open,
                _base64_lines(self.compiled.render_text(personal)),
                self.html_open,
                _base64_lines(self.compiled.render_html(personal)),
                self.close,
            ]
        )


def dot_stuff(message: bytes) -> bytes:
    """SMTP DATA transparency (RFC 5321 4.5.2): a line starting with '.' gets another."""
    return _LEADING_DOT.sub(b"..", message)
