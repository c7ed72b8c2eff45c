"""A mailing as pre-serialised MIME (MimeTemplate), for SMTP: the headers and MIME
structure shared by every copy are encoded once per mailing (from its mail.letter.Letter),
and per person only what differs is joined on (To, Date, Message-ID, X-Tidings-Delivery,
List-Unsubscribe, the two filled parts, base64-encoded). Personal values never enter a
header unchecked: the To address must be plain ASCII without line breaks
(envelope_address), and the links are URL-safe by construction. Why:
docs/adr/0008-pre-serialised-bulk-mime.md.
"""

import base64
import re
import secrets
from email.header import Header
from email.utils import formatdate

from django.utils.encoding import punycode

from subscriptions.mail.headers import ONE_CLICK_POST
from subscriptions.mail.letter import Copy, Letter, one_line

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


def _header(name: str, value: str) -> bytes:
    if one_line(name, value).isascii():
        return f"{name}: {value}".encode("ascii") + CRLF
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode("ascii") + CRLF


def _base64_lines(text: str) -> bytes:
    # encodebytes wraps at 76 characters with LF; SMTP wants CRLF.
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", CRLF)


class MimeTemplate:
    """One mailing's bytes, ready to be stamped per person."""

    def __init__(self, *, letter: Letter) -> None:
        self.letter = letter
        self.compiled = compiled = letter.compiled
        boundary = f"=_tidings_{secrets.token_hex(12)}"  # "_" is outside base64's alphabet
        self.head = b"".join(
            [
                _header("From", letter.from_header),
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

    def as_bytes(self, copy: Copy, *, date: str | None = None) -> bytes:
        """The whole message for one person, CRLF line endings, dot-stuffed-safe."""
        per_person = (
            f"To: {copy.address}\r\n"
            f"Date: {date or formatdate(localtime=False, usegmt=True)}\r\n"
            f"Message-ID: {copy.message_id}\r\n"
            f"X-Tidings-Delivery: {copy.reference}\r\n"
            # List-Unsubscribe-Post is in the shared head.
            + "".join(f"{name}: {value}\r\n" for name, value in self.letter.list_unsubscribe(copy).items())
        ).encode("ascii")
        return b"".join(
            [
                per_person,
                self.head,
                self.text_open,
                _base64_lines(self.compiled.render_text(copy)),
                self.html_open,
                _base64_lines(self.compiled.render_html(copy)),
                self.close,
            ]
        )


def dot_stuff(message: bytes) -> bytes:
    """SMTP DATA transparency (RFC 5321 4.5.2): a line starting with '.' gets another."""
    return _LEADING_DOT.sub(b"..", message)
